namespace EdgeTune.Federated.Privacy;

/// <summary>Where the Gaussian noise of differential privacy is added.</summary>
public enum DpMode
{
    /// <summary>No differential privacy.</summary>
    Off,
    /// <summary>Clients send clipped updates; the server adds N(0, (z·C)²) to their sum (trusts the server).</summary>
    Central,
    /// <summary>Each client clips and adds N(0, (z·C)²) to its own update before sending (trusts no one;
    /// much more noise in the aggregate).</summary>
    Local,
}
