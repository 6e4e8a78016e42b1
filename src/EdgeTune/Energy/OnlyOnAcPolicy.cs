namespace EdgeTune.Energy;

/// <summary><c>--only-on-ac</c>: train only on mains power; pause (with a checkpoint) on battery and resume
/// by itself when plugged in again. When the power source is unknown (a desktop that reports nothing),
/// training goes on.</summary>
public sealed class OnlyOnAcPolicy : IPowerPolicy
{
    public OnlyOnAcPolicy(TimeSpan? pollInterval = null) => PollInterval = pollInterval ?? TimeSpan.FromSeconds(30);

    public TimeSpan PollInterval { get; }

    public string Name => "only-on-ac";

    public PolicyDecision Evaluate(PolicyContext context) =>
        context.State.OnBattery
            ? new PolicyDecision.Pause("running on battery; waiting for mains power (--only-on-ac)", PollInterval)
            : PolicyDecision.Go;
}
