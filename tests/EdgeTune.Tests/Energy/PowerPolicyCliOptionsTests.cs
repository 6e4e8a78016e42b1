using System.CommandLine;
using EdgeTune.Cli.Commands;
using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class PowerPolicyCliOptionsTests
{
    private static (PowerPolicyCliOptions Flags, ParseResult Result) Parse(params string[] args)
    {
        var flags = new PowerPolicyCliOptions();
        var cmd = new Command("finetune");
        flags.AddTo(cmd);
        return (flags, cmd.Parse(args));
    }

    [Fact]
    public void Flags_bind_to_the_option_records()
    {
        var (flags, r) = Parse("--only-on-ac", "--min-battery", "30", "--max-temp", "75", "--power-cap", "10W",
            "--energy-budget", "5Wh", "--grid-intensity", "55", "--device-profile", "laptop-u-15w");
        Assert.Empty(r.Errors);
        var (p, a, profile) = flags.Bind(r);
        Assert.Equal(new PowerPolicyOptions(OnlyOnAc: true, MinBatteryPercent: 30, MaxTemperatureCelsius: 75,
            PowerCapWatts: 10, EnergyBudgetJoules: 18000), p);
        Assert.Equal(55, a.GridIntensityGramsPerKwh);
        Assert.False(a.GridIntensityIsDefault);
        Assert.Equal("laptop-u-15w", profile!.Name);
    }

    [Fact]
    public void Absent_flags_keep_the_defaults_and_bad_values_are_errors()
    {
        var (flags, r) = Parse();
        var defaults = new PowerPolicyOptions(MaxTemperatureCelsius: 80);
        var (p, a, profile) = flags.Bind(r, defaults);
        Assert.Equal(defaults, p);
        Assert.True(a.GridIntensityIsDefault);
        Assert.Null(profile);

        var (_, bad) = Parse("--power-cap", "ten watts");
        Assert.Contains(bad.Errors, e => e.Message.Contains("power 'ten watts'"));
        var (flags2, outOfRange) = Parse("--min-battery", "150");
        Assert.Throws<ArgumentOutOfRangeException>(() => flags2.Bind(outOfRange));
    }
}
