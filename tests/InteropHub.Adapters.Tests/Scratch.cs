using InteropHub.Fhir.Serialization;
using InteropHub.Adapters.His;

namespace InteropHub.Adapters.Tests;

public sealed class Scratch
{
    [Fact]
    public void Dump()
    {
        var serializer = new FhirSerializers();
        var outDir = "/tmp/his-dump";
        Directory.CreateDirectory(outDir);
        foreach (var file in Directory.GetFiles(SampleFiles.Folder(""), "*.hl7", SearchOption.AllDirectories).Order())
        {
            var outcome = HisMapper.Map(File.ReadAllBytes(file));
            var name = Path.GetFileNameWithoutExtension(file);
            var text = $"{outcome.GetType().Name} {outcome.AckCode}\n" + string.Join("\n", outcome.Issues.Select(i => $"  {i.Severity} {i.Reason.Code()} {i.Location?.ToErl()} {i.Hl7ErrorCode} {i.Summary} | {i.Detail}"));
            if (outcome is HisAccepted a)
            {
                text += "\n" + string.Join("\n", a.Preconditions.Select(p => "  PRE " + p));
                File.WriteAllText(Path.Combine(outDir, name + ".json"), System.Text.Encoding.UTF8.GetString(serializer.ToJsonBytes(a.Transaction, pretty: true)));
            }
            File.AppendAllText(Path.Combine(outDir, "summary.txt"), name + ": " + text + "\n");
        }
    }
}
