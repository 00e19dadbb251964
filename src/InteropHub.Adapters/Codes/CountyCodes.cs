using System.Collections.Frozen;

namespace InteropHub.Adapters.Codes;

/// <summary>
/// The county's code tables as the interface specification lists them (legacy/README.md). They are data, kept
/// here so the mappers stay pure; the server loads the same institutions from seeds/organizations.json.
/// </summary>
public static class CountyCodes
{
    /// <summary>The county's own division code (GB/T 2260): the first six digits of its townships' and villages'.</summary>
    public const string CountyDivision = "369921";

    /// <summary>The county's villages: 12-digit division codes (行政区划代码) with their names (the institution table's villages).</summary>
    public static readonly FrozenDictionary<string, string> Villages = new Dictionary<string, string>
    {
        ["369921100201"] = "河口村",
        ["369921100202"] = "杨柳村",
        ["369921101201"] = "沙坪村",
        ["369921101202"] = "新塘村",
        ["369921102201"] = "石门村",
        ["369921102202"] = "松林村",
        ["369921200201"] = "桃花村",
        ["369921200202"] = "溪口村",
        ["369921201201"] = "龙井村",
        ["369921201202"] = "竹园村",
        ["369921202201"] = "梅林村",
        ["369921202202"] = "高坪村",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Institution codes (机构代码) with their names: hospitals, CDC, township centres, village clinics.</summary>
    public static readonly FrozenDictionary<string, string> Institutions = new Dictionary<string, string>
    {
        ["QX2100012"] = "清溪县人民医院",
        ["QX2100020"] = "清溪县中医院",
        ["QX2100039"] = "清溪县妇幼保健院",
        ["QX2100047"] = "清溪县疾病预防控制中心",
        ["QX2110018"] = "清溪镇中心卫生院",
        ["QX2110026"] = "白沙镇卫生院",
        ["QX2110034"] = "石门镇中心卫生院",
        ["QX2110042"] = "桃源乡卫生院",
        ["QX2110050"] = "龙泉乡卫生院",
        ["QX2110069"] = "梅岭乡卫生院",
        ["QX2120013"] = "河口村卫生室",
        ["QX2120021"] = "杨柳村卫生室",
        ["QX212003X"] = "沙坪村卫生室",
        ["QX2120048"] = "新塘村卫生室",
        ["QX2120056"] = "石门村卫生室",
        ["QX2120064"] = "松林村卫生室",
        ["QX2120072"] = "桃花村卫生室",
        ["QX2120080"] = "溪口村卫生室",
        ["QX2120099"] = "龙井村卫生室",
        ["QX2120101"] = "竹园村卫生室",
        ["QX212011X"] = "梅林村卫生室",
        ["QX2120128"] = "高坪村卫生室",
    }.ToFrozenDictionary();

    /// <summary>Each village clinic's township centre (legacy/README.md, village clinics table).</summary>
    public static readonly FrozenDictionary<string, string> ClinicCentres = new Dictionary<string, string>
    {
        ["QX2120013"] = "QX2110018", ["QX2120021"] = "QX2110018",
        ["QX212003X"] = "QX2110026", ["QX2120048"] = "QX2110026",
        ["QX2120056"] = "QX2110034", ["QX2120064"] = "QX2110034",
        ["QX2120072"] = "QX2110042", ["QX2120080"] = "QX2110042",
        ["QX2120099"] = "QX2110050", ["QX2120101"] = "QX2110050",
        ["QX212011X"] = "QX2110069", ["QX2120128"] = "QX2110069",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>GB/T 3304 ethnicity codes 01–56, 97, 98.</summary>
    public static readonly FrozenDictionary<string, string> Ethnicities = new Dictionary<string, string>
    {
        ["01"] = "汉族", ["02"] = "蒙古族", ["03"] = "回族", ["04"] = "藏族", ["05"] = "维吾尔族", ["06"] = "苗族", ["07"] = "彝族",
        ["08"] = "壮族", ["09"] = "布依族", ["10"] = "朝鲜族", ["11"] = "满族", ["12"] = "侗族", ["13"] = "瑶族", ["14"] = "白族",
        ["15"] = "土家族", ["16"] = "哈尼族", ["17"] = "哈萨克族", ["18"] = "傣族", ["19"] = "黎族", ["20"] = "傈僳族", ["21"] = "佤族",
        ["22"] = "畲族", ["23"] = "高山族", ["24"] = "拉祜族", ["25"] = "水族", ["26"] = "东乡族", ["27"] = "纳西族", ["28"] = "景颇族",
        ["29"] = "柯尔克孜族", ["30"] = "土族", ["31"] = "达斡尔族", ["32"] = "仫佬族", ["33"] = "羌族", ["34"] = "布朗族", ["35"] = "撒拉族",
        ["36"] = "毛南族", ["37"] = "仡佬族", ["38"] = "锡伯族", ["39"] = "阿昌族", ["40"] = "普米族", ["41"] = "塔吉克族", ["42"] = "怒族",
        ["43"] = "乌孜别克族", ["44"] = "俄罗斯族", ["45"] = "鄂温克族", ["46"] = "德昂族", ["47"] = "保安族", ["48"] = "裕固族", ["49"] = "京族",
        ["50"] = "塔塔尔族", ["51"] = "独龙族", ["52"] = "鄂伦春族", ["53"] = "赫哲族", ["54"] = "门巴族", ["55"] = "珞巴族", ["56"] = "基诺族",
        ["97"] = "其他", ["98"] = "外国血统中国籍人士",
    }.ToFrozenDictionary();

    /// <summary>County vaccine codes (QXVAC) with name and CVX where one exists (≈ marks closest concepts in the spec).</summary>
    public static readonly FrozenDictionary<string, Vaccine> Vaccines = new Vaccine[]
    {
        new("0101", "乙肝疫苗(10μg)", "08"), new("0102", "乙肝疫苗(20μg)", "43"), new("0201", "卡介苗", "19"),
        new("0301", "脊灰灭活疫苗", "10"), new("0302", "二价脊灰减毒活疫苗", "178"), new("0401", "百白破疫苗", "20"),
        new("0402", "白破疫苗", "28"), new("0501", "麻腮风疫苗", "03"), new("0502", "麻风疫苗", "04"),
        new("0601", "乙脑减毒活疫苗", "129", Approximate: true), new("0602", "乙脑灭活疫苗", "134", Approximate: true), new("0701", "A群流脑多糖疫苗", null),
        new("0702", "A群C群流脑多糖疫苗", null), new("0801", "甲肝减毒活疫苗", "85", Approximate: true), new("0802", "甲肝灭活疫苗", "83"),
        new("0901", "水痘减毒活疫苗", "21"), new("1001", "四价流感病毒裂解疫苗", "150", Approximate: true), new("1101", "双价人乳头瘤病毒疫苗", "118"),
        new("1102", "九价人乳头瘤病毒疫苗", "165"), new("1201", "肠道病毒71型灭活疫苗", null), new("1301", "b型流感嗜血杆菌结合疫苗", "48"),
        new("1401", "13价肺炎球菌多糖结合疫苗", "133"), new("1402", "23价肺炎球菌多糖疫苗", "33"), new("1501", "人用狂犬病疫苗(Vero细胞)", "90", Approximate: true),
        new("1601", "口服轮状病毒活疫苗", "122", Approximate: true),
    }.ToFrozenDictionary(v => v.Code);

    /// <summary>Vaccine manufacturers (QXMFR).</summary>
    public static readonly FrozenDictionary<string, string> Manufacturers = new Dictionary<string, string>
    {
        ["M01"] = "江南生物制品有限公司",
        ["M02"] = "华康疫苗股份有限公司",
        ["M03"] = "北辰生物技术有限公司",
        ["M04"] = "云岭生物制品研究所",
        ["M05"] = "东海生物医药有限公司",
    }.ToFrozenDictionary();

    /// <summary>County LIS item codes with their LOINC (his-hl7v2.md §5 ORU^R01); null where none is assigned.</summary>
    public static readonly FrozenDictionary<string, LabItem> LabItems = new LabItem[]
    {
        new("GLU", "葡萄糖(空腹)", "14771-0"), new("HBA1C", "糖化血红蛋白", "4548-4"), new("K", "钾", "2823-3"),
        new("NA", "钠", "2951-2"), new("CREA", "肌酐", "14682-9"), new("UREA", "尿素", null), new("TC", "总胆固醇", "14647-2"),
        new("TG", "甘油三酯", "14927-8"), new("HDL-C", "高密度脂蛋白胆固醇", "14646-4"), new("LDL-C", "低密度脂蛋白胆固醇", "22748-8"),
        new("ALT", "丙氨酸氨基转移酶", "1742-6"), new("AST", "天门冬氨酸氨基转移酶", "1920-8"), new("WBC", "白细胞计数", "6690-2"),
        new("HGB", "血红蛋白", "718-7"), new("PLT", "血小板计数", "777-3"), new("HBSAG", "乙肝表面抗原", "5196-1"),
    }.ToFrozenDictionary(i => i.Code);

    /// <summary>HIS department codes (his-hl7v2.md §8).</summary>
    public static readonly FrozenDictionary<string, string> Departments = new Dictionary<string, string>
    {
        ["0101"] = "预防保健科", ["0201"] = "全科医疗科", ["0301"] = "呼吸内科", ["0304"] = "心血管内科", ["0304C"] = "心内科CCU",
        ["0307"] = "内分泌科", ["0401"] = "普通外科", ["0501"] = "妇科", ["0502"] = "产科", ["0701"] = "新生儿科", ["0702"] = "儿科",
        ["2001"] = "急诊科", ["3001"] = "检验科", ["5001"] = "中医科",
    }.ToFrozenDictionary();

    /// <summary>The code system of the national list of 诊疗科目 (医疗机构诊疗科目名录, 卫医发〔1994〕第27号).</summary>
    public const string DiagnosisTreatmentSubjects = "urn:interophub:cs:diagnosis-treatment-subject";

    /// <summary>
    /// The 诊疗科目 each HIS department code is modelled on (his-hl7v2.md §8), with its name in the national list. The CCU
    /// (<c>0304C</c>) is only a part of 03.04, so its map is <c>wider</c>.
    /// </summary>
    public static readonly FrozenDictionary<string, (string Code, string Name)> DepartmentSubjects = new Dictionary<string, (string, string)>
    {
        ["0101"] = ("01", "预防保健科"), ["0201"] = ("02", "全科医疗科"), ["0301"] = ("03.01", "呼吸内科专业"), ["0304"] = ("03.04", "心血管内科专业"),
        ["0304C"] = ("03.04", "心血管内科专业"), ["0307"] = ("03.07", "内分泌专业"), ["0401"] = ("04.01", "普通外科专业"), ["0501"] = ("05.01", "妇科专业"),
        ["0502"] = ("05.02", "产科专业"), ["0701"] = ("07.01", "新生儿专业"), ["0702"] = ("07", "儿科"), ["2001"] = ("20", "急诊医学科"),
        ["3001"] = ("30", "医学检验科"), ["5001"] = ("50", "中医科"),
    }.ToFrozenDictionary();
}

/// <summary>A county vaccine; <see cref="Approximate"/> marks the CVX codes the specification gives as closest concepts (≈).</summary>
public sealed record Vaccine(string Code, string Name, string? Cvx, bool Approximate = false);

public sealed record LabItem(string Code, string Name, string? Loinc);
