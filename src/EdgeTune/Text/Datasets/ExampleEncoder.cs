using System.Text;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Turns <see cref="DataSample"/>s into <see cref="TokenizedExample"/>s with exact loss masks.
/// <list type="bullet">
/// <item>Text: [BOS when the tokenizer adds it by default] + text + [EOS]; every token trained on. Special-token
/// text inside user data stays plain text.</item>
/// <item>Chat (and instructions when a chat template is given: a user turn "instruction\n\ninput" and an assistant
/// turn "output"): the conversation is rendered with the template once and tokenized once (special-token text is
/// parsed, as in apply_chat_template). Each assistant turn's span is found by rendering the conversation up to it with
/// add_generation_prompt=true (where the response starts) and up to and including it (where it ends, trailing
/// whitespace dropped), so the loss covers the turn's content and its end-of-turn marker, and nothing else.</item>
/// <item>Instructions without a template: the Alpaca prompt, then the output and EOS, which carry the loss.</item>
/// <item>Prompt-completion (TRL's layout): [BOS] + prompt + completion + [EOS], no template; the completion and EOS
/// carry the loss, as TRL's completion-only loss does.</item>
/// </list>
/// Token-to-text alignment uses <see cref="ITokenizer.TokenBytes"/>: a token is trained on when its first byte lies in
/// a response span. When the tokens do not spell the text byte for byte (e.g. a normalizer changed it), the text is
/// instead tokenized piece by piece at the span boundaries.
/// </summary>
public sealed class ExampleEncoder
{
    /// <summary>The Alpaca prompt header without an input.</summary>
    public const string AlpacaPrompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{0}\n\n### Response:\n";

    /// <summary>The Alpaca prompt header with an input.</summary>
    public const string AlpacaPromptWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{0}\n\n### Input:\n{1}\n\n### Response:\n";

    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplate? _template;
    private readonly ChatTemplate _chatTemplate;

    /// <param name="tokenizer">the model's tokenizer.</param>
    /// <param name="template">the model's chat template, or null when it has none (instructions then use the Alpaca
    /// prompt and chats <paramref name="fallbackChatTemplate"/>).</param>
    public ExampleEncoder(ITokenizer tokenizer, ChatTemplate? template, string fallbackChatTemplate = ChatTemplates.ChatML)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _template = template;
        _chatTemplate = template ?? new ChatTemplate(fallbackChatTemplate,
            tokenizer.BosId is int b ? tokenizer.IdToToken(b) : null, tokenizer.EosId is int e ? tokenizer.IdToToken(e) : null);
    }

    /// <summary>The messages an instruction sample becomes under a chat template.</summary>
    public static IReadOnlyList<ChatMessage> InstructionToMessages(string instruction, string? input, string output) =>
    [
        ChatMessage.User(string.IsNullOrEmpty(input) ? instruction : instruction + "\n\n" + input),
        ChatMessage.Assistant(output),
    ];

    /// <summary>Encodes one sample.</summary>
    /// <exception cref="ChatTemplateException">the template fails on this conversation.</exception>
    /// <exception cref="InvalidDataException">an assistant turn cannot be located in the rendering.</exception>
    public TokenizedExample Encode(DataSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (sample.Text is not null) return EncodeText(sample.Line, sample.Text);
        if (sample.Messages is not null) return EncodeChat(sample.Line, sample.Messages);
        if (sample.Instruction is not null && sample.Output is not null)
        {
            if (_template is not null) return EncodeChat(sample.Line, InstructionToMessages(sample.Instruction, sample.Input, sample.Output));
            string prompt = string.IsNullOrEmpty(sample.Input)
                ? string.Format(System.Globalization.CultureInfo.InvariantCulture, AlpacaPrompt, sample.Instruction)
                : string.Format(System.Globalization.CultureInfo.InvariantCulture, AlpacaPromptWithInput, sample.Instruction, sample.Input);
            var (tokens, loss) = Tokenize(prompt + sample.Output, [(prompt.Length, prompt.Length + sample.Output.Length)], parseSpecial: false);
            return Wrap(sample.Line, tokens, loss, bos: true, eosLoss: true);
        }
        if (sample.Prompt is not null && sample.Completion is not null)
        {
            string text = sample.Prompt + sample.Completion;
            var (tokens, loss) = Tokenize(text, [(sample.Prompt.Length, text.Length)], parseSpecial: false);
            return Wrap(sample.Line, tokens, loss, bos: true, eosLoss: true);
        }
        throw new ArgumentException($"ExampleEncoder: sample of line {sample.Line} has neither text, messages, instruction/output nor prompt/completion", nameof(sample));
    }

    /// <summary>Plain text with every token trained on: [BOS] + text + [EOS].</summary>
    public TokenizedExample EncodeText(int line, string text)
    {
        int[] ids = _tokenizer.Encode(text, parseSpecial: false);
        var loss = new bool[ids.Length];
        Array.Fill(loss, true);
        return Wrap(line, ids, loss, bos: true, eosLoss: true);
    }

    private TokenizedExample EncodeChat(int line, IReadOnlyList<ChatMessage> messages)
    {
        string full = _chatTemplate.Render(messages);
        var spans = new List<(int Start, int End)>();
        int searchFrom = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant") continue;
            string before = _chatTemplate.Render(messages.Take(i), addGenerationPrompt: true);
            string upTo = _chatTemplate.Render(messages.Take(i + 1));
            int start, end;
            if (full.StartsWith(before, StringComparison.Ordinal) && full.StartsWith(upTo, StringComparison.Ordinal) && upTo.Length > before.Length)
            {
                start = before.Length;
                end = upTo.Length;
                while (end > start && char.IsWhiteSpace(upTo[end - 1])) end--;
            }
            else
            {
                // The template is not prefix-stable (it rewrites earlier turns): find the content itself.
                start = full.IndexOf(messages[i].Content, searchFrom, StringComparison.Ordinal);
                if (start < 0) throw new InvalidDataException($"line {line}: assistant turn {i} not found in the chat template's rendering");
                end = start + messages[i].Content.Length;
                string? eos = _tokenizer.EosId is int e ? _tokenizer.IdToToken(e) : null;
                if (eos is not null && string.CompareOrdinal(full, end, eos, 0, eos.Length) == 0) end += eos.Length;
            }
            if (start < searchFrom) throw new InvalidDataException($"line {line}: assistant turn {i} overlaps the previous one in the rendering");
            spans.Add((start, end));
            searchFrom = end;
        }
        var (tokens, lossMask) = Tokenize(full, spans, parseSpecial: true);
        return new TokenizedExample(line, tokens, lossMask);
    }

    /// <summary>Adds BOS (when the tokenizer adds it by default and the text did not start with it) and EOS.</summary>
    private TokenizedExample Wrap(int line, int[] ids, bool[] loss, bool bos, bool eosLoss)
    {
        bool addBos = bos && _tokenizer.AddBosByDefault && _tokenizer.BosId is int b && (ids.Length == 0 || ids[0] != b);
        bool addEos = _tokenizer.EosId is int e && (ids.Length == 0 || ids[^1] != e);
        int n = ids.Length + (addBos ? 1 : 0) + (addEos ? 1 : 0);
        var t = new int[n];
        var l = new bool[n];
        int o = addBos ? 1 : 0;
        if (addBos) t[0] = _tokenizer.BosId!.Value;
        ids.CopyTo(t, o);
        loss.CopyTo(l, o);
        if (addEos) { t[^1] = _tokenizer.EosId!.Value; l[^1] = eosLoss; }
        return new TokenizedExample(line, t, l);
    }

    /// <summary>Tokenizes <paramref name="text"/> (no BOS) and marks the tokens whose first byte lies in a span
    /// (spans in chars, sorted, disjoint).</summary>
    private (int[] Tokens, bool[] Loss) Tokenize(string text, IReadOnlyList<(int Start, int End)> spans, bool parseSpecial)
    {
        int[] ids = _tokenizer.Encode(text, addBos: false, addEos: false, parseSpecial: parseSpecial);
        var starts = new long[ids.Length];
        long pos = 0;
        bool atStart = true;
        for (int i = 0; i < ids.Length; i++)
        {
            starts[i] = pos;
            bool special = _tokenizer.IsSpecial(ids[i]);
            pos += _tokenizer.TokenBytes(ids[i], atStart).Length;
            if (!special) atStart = false;
        }
        if (pos == Encoding.UTF8.GetByteCount(text) && _tokenizer.Decode(ids) == text)
        {
            var loss = new bool[ids.Length];
            int s = 0;
            foreach (var (cs, ce) in spans)
            {
                long bs = Encoding.UTF8.GetByteCount(text.AsSpan(0, cs));
                long be = bs + Encoding.UTF8.GetByteCount(text.AsSpan(cs, ce - cs));
                while (s < ids.Length && starts[s] < bs) s++;
                while (s < ids.Length && starts[s] < be) loss[s++] = true;
            }
            return (ids, loss);
        }
        PiecewiseFallbacks++;
        return TokenizePiecewise(text, spans, parseSpecial);
    }

    /// <summary>How many samples needed the piece-by-piece tokenization (tokens did not spell the text).</summary>
    internal int PiecewiseFallbacks { get; private set; }

    private (int[] Tokens, bool[] Loss) TokenizePiecewise(string text, IReadOnlyList<(int Start, int End)> spans, bool parseSpecial)
    {
        var tokens = new List<int>();
        var loss = new List<bool>();
        int pos = 0;
        void Piece(int from, int to, bool trained)
        {
            if (to <= from) return;
            int[] ids = _tokenizer.Encode(text[from..to], addBos: false, addEos: false, parseSpecial: parseSpecial);
            tokens.AddRange(ids);
            for (int i = 0; i < ids.Length; i++) loss.Add(trained);
        }
        foreach (var (s, e) in spans)
        {
            Piece(pos, s, false);
            Piece(s, e, true);
            pos = e;
        }
        Piece(pos, text.Length, false);
        return (tokens.ToArray(), loss.ToArray());
    }
}
