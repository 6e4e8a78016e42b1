namespace EdgeTune.Text;

/// <summary>
/// A Hugging Face "Digits" pre-tokenizer that runs before the byte-level regex (SmolLM/SmolLM2, StarCoder):
/// numbers are cut out of the text first, so a space before a number is never merged with it.
/// </summary>
public enum DigitSplit
{
    /// <summary>No digit pre-tokenizer: the regex alone decides (GPT-2, Qwen2, Llama 3).</summary>
    None,
    /// <summary>Each run of numeric characters is its own piece (Digits with individual_digits=false).</summary>
    Runs,
    /// <summary>Every numeric character is its own piece (Digits with individual_digits=true).</summary>
    Individual,
}
