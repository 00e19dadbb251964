namespace InteropHub.Adapters;

/// <summary>The reason codes shared by the three legacy interfaces (legacy/README.md, "Rejection reasons").</summary>
public enum RejectionReason
{
    IdCheckDigit,
    IdFormat,
    UnknownCode,
    ImpossibleDate,
    MissingRequired,
    UnknownReference,
    InvalidTransition,
    DuplicateKey,
    Malformed,
    Unsupported,
    Integrity,
}

public static class RejectionReasons
{
    /// <summary>The code as written in ERR-5, batch results and OperationOutcomes, e.g. <c>ID_CHECK_DIGIT</c>.</summary>
    public static string Code(this RejectionReason reason) => reason switch
    {
        RejectionReason.IdCheckDigit => "ID_CHECK_DIGIT",
        RejectionReason.IdFormat => "ID_FORMAT",
        RejectionReason.UnknownCode => "UNKNOWN_CODE",
        RejectionReason.ImpossibleDate => "IMPOSSIBLE_DATE",
        RejectionReason.MissingRequired => "MISSING_REQUIRED",
        RejectionReason.UnknownReference => "UNKNOWN_REFERENCE",
        RejectionReason.InvalidTransition => "INVALID_TRANSITION",
        RejectionReason.DuplicateKey => "DUPLICATE_KEY",
        RejectionReason.Malformed => "MALFORMED",
        RejectionReason.Unsupported => "UNSUPPORTED",
        RejectionReason.Integrity => "INTEGRITY",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };

    /// <summary>The short Chinese text the legacy systems show their users (MSA-3, ERR-5.2).</summary>
    public static string Text(this RejectionReason reason) => reason switch
    {
        RejectionReason.IdCheckDigit => "身份证号校验位错误",
        RejectionReason.IdFormat => "身份证号格式错误",
        RejectionReason.UnknownCode => "编码不在值域内",
        RejectionReason.ImpossibleDate => "日期不合理",
        RejectionReason.MissingRequired => "必填项为空",
        RejectionReason.UnknownReference => "引用的记录不存在",
        RejectionReason.InvalidTransition => "转诊状态变更不允许",
        RejectionReason.DuplicateKey => "主键重复且内容不同",
        RejectionReason.Malformed => "消息无法解析",
        RejectionReason.Unsupported => "不支持的消息",
        RejectionReason.Integrity => "文件完整性校验失败",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };

    /// <summary>The usual HL7 table 0357 error code for the reason (ERR-3); a few cases choose another one.</summary>
    public static int Hl7ErrorCode(this RejectionReason reason) => reason switch
    {
        RejectionReason.IdCheckDigit or RejectionReason.IdFormat or RejectionReason.ImpossibleDate => 102,
        RejectionReason.UnknownCode => 103,
        RejectionReason.MissingRequired => 101,
        RejectionReason.UnknownReference => 204,
        RejectionReason.InvalidTransition => 207,
        RejectionReason.DuplicateKey => 205,
        RejectionReason.Malformed => 100,
        RejectionReason.Unsupported => 200,
        _ => 207,
    };
}
