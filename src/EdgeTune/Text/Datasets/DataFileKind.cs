namespace EdgeTune.Text.Datasets;

/// <summary>The container a data file was read from.</summary>
public enum DataFileKind
{
    /// <summary>UTF-8 text (.txt, .md, or any text that is not JSON).</summary>
    Text,
    /// <summary>One JSON object per line (.jsonl, .ndjson, or a .json of objects line by line).</summary>
    Jsonl,
    /// <summary>One JSON array of objects (.json).</summary>
    JsonArray,
    /// <summary>Comma or tab separated values with a header row (.csv, .tsv).</summary>
    Csv,
    /// <summary>Apache Parquet (.parquet).</summary>
    Parquet,
}
