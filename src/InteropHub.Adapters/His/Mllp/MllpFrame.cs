namespace InteropHub.Adapters.His.Mllp;

public enum MllpFrameKind
{
    /// <summary>A complete message between a start block and an end block.</summary>
    Message,

    /// <summary>A frame longer than the limit; its bytes were dropped up to the end block. <see cref="MllpFrame.Bytes"/> keeps the start, so the MSH can be answered.</summary>
    Oversize,

    /// <summary>A frame cut short: a new start block arrived, or the connection ended, before its end block.</summary>
    Truncated,

    /// <summary>Bytes outside any frame (other than line breaks and spaces) were skipped.</summary>
    Garbage,
}

/// <summary>What the MLLP decoder found. <see cref="Length"/> counts every byte the frame or garbage run had.</summary>
public sealed record MllpFrame(MllpFrameKind Kind, ReadOnlyMemory<byte> Bytes, long Length);
