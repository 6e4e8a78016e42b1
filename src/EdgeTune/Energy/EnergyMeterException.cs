namespace EdgeTune.Energy;

/// <summary>A meter could not be read; the message names the meter, the file or call, and the fix when known.</summary>
public sealed class EnergyMeterException : Exception
{
    public EnergyMeterException(string message) : base(message) { }

    public EnergyMeterException(string message, Exception inner) : base(message, inner) { }
}
