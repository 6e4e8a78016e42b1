namespace EdgeTune.Text.Datasets;

/// <summary>How <see cref="TrainingDataset.Load(string, ITokenizer, ChatTemplate?, DatasetOptions?)"/> turns a data file into training sequences.</summary>
public sealed record DatasetOptions
{
    /// <summary>The file layout; <see cref="DataFormat.Auto"/> detects it.</summary>
    public DataFormat Format { get; init; } = DataFormat.Auto;

    /// <summary>Sequence length L (tokens per training row).</summary>
    public int SeqLen { get; init; } = 256;

    /// <summary>Pack several short samples into one sequence (separated by EOS, no target across a boundary).
    /// Off: one sample per sequence, padded.</summary>
    public bool Pack { get; init; } = true;

    /// <summary>Fraction of rows held out for validation, in [0, 1): JSONL rows drawn at random, or the last lines of a
    /// plain text (its tail). Rounded, at least one row when positive.
    /// Ignored when <see cref="ValidationCount"/> is positive.</summary>
    public double ValidationFraction { get; init; }

    /// <summary>Number of rows held out for validation: JSONL rows (by source line, drawn with <see cref="Seed"/>) or the
    /// last lines of a plain text. Takes precedence over <see cref="ValidationFraction"/>; at least one row stays for training.</summary>
    public int ValidationCount { get; init; }

    /// <summary>Seed of the validation split (JSONL rows are drawn at random with it).</summary>
    public ulong Seed { get; init; } = 1234;

    /// <summary>How many example line numbers the report keeps per rejection reason.</summary>
    public int MaxRejectExamples { get; init; } = 5;

    /// <summary>Template used for chat data when the model has none (null template passed to Load).
    /// Instruction data without a template uses an Alpaca-style prompt instead.</summary>
    public string FallbackChatTemplate { get; init; } = ChatTemplates.ChatML;

    internal void Validate()
    {
        if (SeqLen < 2) throw new ArgumentOutOfRangeException(nameof(SeqLen), SeqLen, "DatasetOptions.SeqLen must be at least 2");
        if (ValidationFraction is < 0 or >= 1 || double.IsNaN(ValidationFraction))
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "DatasetOptions.ValidationFraction must be in [0, 1)");
        if (ValidationCount < 0) throw new ArgumentOutOfRangeException(nameof(ValidationCount), ValidationCount, "DatasetOptions.ValidationCount must be >= 0");
        if (MaxRejectExamples < 0) throw new ArgumentOutOfRangeException(nameof(MaxRejectExamples), MaxRejectExamples, "must be >= 0");
    }
}
