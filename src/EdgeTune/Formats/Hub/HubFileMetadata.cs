namespace EdgeTune.Formats.Hub;

/// <summary>
/// What a <c>HEAD {endpoint}/{repo}/resolve/{revision}/{file}</c> says about a file:
/// the commit the revision points to (<c>X-Repo-Commit</c>), the normalized etag (<c>X-Linked-Etag</c>
/// or <c>ETag</c>, without quotes and <c>W/</c>; for LFS files it is the sha256 of the content), the size
/// (<c>X-Linked-Size</c> or <c>Content-Length</c>) and the URL the bytes come from (the redirect target
/// for LFS files, otherwise the resolve URL itself).
/// </summary>
public sealed record HubFileMetadata(string CommitHash, string Etag, long? Size, Uri DownloadUri)
{
    /// <summary>True when the etag is a 64-hex sha256 (LFS files), which the download is checked against.</summary>
    public bool EtagIsSha256 => Etag.Length == 64 && Etag.All(char.IsAsciiHexDigitLower);
}
