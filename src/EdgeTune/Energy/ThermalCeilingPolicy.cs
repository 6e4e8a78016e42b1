using System.Globalization;

namespace EdgeTune.Energy;

/// <summary><c>--max-temp 75</c>: pause when the hottest sensor reaches the ceiling and back off until it
/// has cooled to ceiling − hysteresis, so training does not flap around the limit. No sensor: no effect.</summary>
public sealed class ThermalCeilingPolicy : IPowerPolicy
{
    private bool _paused;

    /// <param name="maxCelsius">The ceiling in °C.</param>
    /// <param name="hysteresisCelsius">Resume at ceiling − this (default 5 °C).</param>
    /// <param name="pollInterval">Pause poll interval (default 10 s; heat sinks cool in tens of seconds).</param>
    public ThermalCeilingPolicy(double maxCelsius, double hysteresisCelsius = 5, TimeSpan? pollInterval = null)
    {
        if (!(maxCelsius > 0 && maxCelsius < 150)) throw new ArgumentOutOfRangeException(nameof(maxCelsius), maxCelsius, "temperature ceiling must be in (0, 150) °C");
        if (!(hysteresisCelsius >= 0 && hysteresisCelsius < maxCelsius)) throw new ArgumentOutOfRangeException(nameof(hysteresisCelsius), hysteresisCelsius, "hysteresis must be in [0, ceiling)");
        MaxCelsius = maxCelsius;
        HysteresisCelsius = hysteresisCelsius;
        PollInterval = pollInterval ?? TimeSpan.FromSeconds(10);
    }

    public double MaxCelsius { get; }

    public double HysteresisCelsius { get; }

    public TimeSpan PollInterval { get; }

    public bool IsPaused => _paused;

    public string Name => string.Create(CultureInfo.InvariantCulture, $"max-temp {MaxCelsius:0.#} °C");

    public PolicyDecision Evaluate(PolicyContext context)
    {
        if (context.State.MaxTemperatureCelsius is not double t) { _paused = false; return PolicyDecision.Go; }
        double resumeAt = MaxCelsius - HysteresisCelsius;
        if (_paused) { if (t <= resumeAt) _paused = false; }
        else if (t >= MaxCelsius) _paused = true;
        return _paused
            ? new PolicyDecision.Pause(string.Create(CultureInfo.InvariantCulture,
                $"temperature {t:0.#} °C over ceiling {MaxCelsius:0.#} °C; cooling down to {resumeAt:0.#} °C"), PollInterval)
            : PolicyDecision.Go;
    }
}
