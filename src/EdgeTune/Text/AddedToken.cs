namespace EdgeTune.Text;

/// <summary>
/// A token matched on the raw text before the model runs (tokenizer.json "added_tokens",
/// tokenizer_config.json "added_tokens_decoder"). <see cref="LStrip"/>/<see cref="RStrip"/>: whitespace on that
/// side is swallowed by the token. <see cref="Special"/>: a control token (skipped by Decode(skipSpecial)).
/// </summary>
public sealed record AddedToken(string Content, int Id, bool Special = true, bool LStrip = false, bool RStrip = false);
