using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>What a power policy (or the engine combining them) says to do before the next step.</summary>
public enum PolicyAction
{
    Continue,
    Throttle,
    Pause,
    Stop,
}

/// <summary>A policy's decision: <see cref="Continue"/>, <see cref="Throttle"/> (fewer threads and a sleep
/// after each step), <see cref="Pause"/> (checkpoint, wait, poll again) or <see cref="Stop"/> (checkpoint
/// and end cleanly).</summary>
public abstract record PolicyDecision
{
    private PolicyDecision() { }

    public abstract PolicyAction Action { get; }

    /// <summary>Why (empty for Continue).</summary>
    public abstract string Reason { get; }

    /// <summary>Go on at full speed.</summary>
    public static Continue Go { get; } = new();

    public sealed record Continue : PolicyDecision
    {
        public override PolicyAction Action => PolicyAction.Continue;

        public override string Reason => "";
    }

    /// <param name="Threads">Worker threads to use for the next step.</param>
    /// <param name="SleepAfterStep">Idle time after the step (duty cycling).</param>
    /// <param name="Why">Explanation, e.g. "power cap 10 W: measured 14.2 W".</param>
    public sealed record Throttle(int Threads, TimeSpan SleepAfterStep, string Why) : PolicyDecision
    {
        public override PolicyAction Action => PolicyAction.Throttle;

        public override string Reason => Why;
    }

    /// <param name="Why">Explanation, e.g. "battery 29% &lt;= floor 30%; resumes at 35% or on mains power".</param>
    /// <param name="PollInterval">How long to wait before asking again.</param>
    public sealed record Pause(string Why, TimeSpan PollInterval) : PolicyDecision
    {
        public override PolicyAction Action => PolicyAction.Pause;

        public override string Reason => Why;
    }

    /// <param name="Why">Explanation, e.g. "energy budget 5 Wh spent (5.01 Wh used)".</param>
    public sealed record Stop(string Why) : PolicyDecision
    {
        public override PolicyAction Action => PolicyAction.Stop;

        public override string Reason => Why;
    }

    /// <summary>Combines decisions: any Stop wins (first one); else any Pause (reasons joined, shortest poll);
    /// else any Throttle (fewest threads, longest sleep); else Continue.</summary>
    public static PolicyDecision Combine(IEnumerable<PolicyDecision> decisions)
    {
        var list = decisions.ToList();
        if (list.OfType<Stop>().FirstOrDefault() is { } stop) return stop;
        var pauses = list.OfType<Pause>().ToList();
        if (pauses.Count > 0)
            return new Pause(string.Join("; ", pauses.Select(p => p.Why)), pauses.Min(p => p.PollInterval));
        var throttles = list.OfType<Throttle>().ToList();
        if (throttles.Count > 0)
            return new Throttle(throttles.Min(t => t.Threads), throttles.Max(t => t.SleepAfterStep),
                string.Join("; ", throttles.Select(t => t.Why)));
        return Go;
    }

    public override string ToString() => this switch
    {
        Throttle t => string.Create(CultureInfo.InvariantCulture, $"Throttle({t.Threads} threads, sleep {t.SleepAfterStep.TotalMilliseconds:0} ms: {t.Why})"),
        Pause p => string.Create(CultureInfo.InvariantCulture, $"Pause({p.Why}; poll {p.PollInterval.TotalSeconds:0.#} s)"),
        Stop s => $"Stop({s.Why})",
        _ => "Continue",
    };
}
