using System.Text.Json;
using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class EnergyAccountantTests
{
    [Fact]
    public void Records_per_step_and_per_token_figures()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter { Joules = 1000 };
        var acc = new EnergyAccountant(meter, clock);

        clock.AdvanceSeconds(2);
        meter.Joules += 30; // 15 W
        var r1 = acc.RecordStep(1, tokens: 300);
        Assert.Equal(1, r1.Step);
        Assert.Equal(30, r1.Joules, 9);
        Assert.Equal(2, r1.Seconds, 9);
        Assert.Equal(15, r1.AverageWatts, 9);
        Assert.Equal(0.1, r1.JoulesPerToken!.Value, 9);
        Assert.Equal(30 / 3600.0, r1.WattHours, 12);
        Assert.Equal(30 / 3.6e6 * 400, r1.Co2eGrams, 12);
        Assert.False(r1.Estimated);

        clock.AdvanceSeconds(1);
        meter.Joules += 10;
        var r2 = acc.RecordStep(2, tokens: 0);
        Assert.Null(r2.JoulesPerToken);
        Assert.Equal(40, r2.CumulativeJoules, 9);

        var rep = acc.Report();
        Assert.Equal(2, rep.Steps);
        Assert.Equal(300, rep.Tokens);
        Assert.Equal(40, rep.Joules, 9);
        Assert.Equal(40 / 3.0, rep.AverageWatts, 9);
        Assert.Equal(40 / 300.0, rep.JoulesPerToken!.Value, 9);
        Assert.True(rep.GridIntensityIsDefault);
        Assert.Contains("(default grid intensity)", rep.Describe());
        Assert.Contains("measured by fake", rep.Describe());
    }

    [Fact]
    public void Json_line_round_trips_and_carries_the_estimate_flag()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter { Estimate = true, Id = "estimate:x" };
        var acc = new EnergyAccountant(meter, clock, EnergyAccountingOptions.WithGridIntensity(50));
        clock.AdvanceSeconds(4);
        meter.Joules = 7200; // 2 Wh
        var line = acc.RecordTokens(1000).ToJson();
        Assert.DoesNotContain('\n', line);
        using var doc = JsonDocument.Parse(line);
        var o = doc.RootElement;
        Assert.Equal(7200, o.GetProperty("joules").GetDouble(), 9);
        Assert.Equal(2, o.GetProperty("wh").GetDouble(), 9);
        Assert.Equal(1800, o.GetProperty("avg_watts").GetDouble(), 9);
        Assert.Equal(7.2, o.GetProperty("joules_per_token").GetDouble(), 9);
        Assert.Equal(0.1, o.GetProperty("co2e_g").GetDouble(), 9); // 0.002 kWh × 50 g/kWh
        Assert.True(o.GetProperty("estimated").GetBoolean());
        Assert.Equal("estimate:x", o.GetProperty("meter").GetString());

        var report = acc.Report();
        Assert.True(report.Estimated);
        Assert.False(report.GridIntensityIsDefault);
        Assert.Contains("ESTIMATED", report.Describe());
        using var rdoc = JsonDocument.Parse(report.ToJson());
        Assert.True(rdoc.RootElement.GetProperty("estimated").GetBoolean());
        Assert.Equal(50, rdoc.RootElement.GetProperty("grid_g_per_kwh").GetDouble());
    }

    [Fact]
    public void Pauses_are_excluded_from_step_figures()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter();
        var acc = new EnergyAccountant(meter, clock);
        clock.AdvanceSeconds(1); meter.Joules += 20;
        acc.RecordStep(0, 10);
        clock.AdvanceSeconds(60); meter.Joules += 120; // idle in a pause
        acc.Skip();
        clock.AdvanceSeconds(1); meter.Joules += 20;
        var r = acc.RecordStep(1, 10);
        Assert.Equal(20, r.Joules, 9);
        var rep = acc.Report();
        Assert.Equal(40, rep.Joules, 9);
        Assert.Equal(2, rep.Seconds, 9);
        Assert.Equal(120, rep.ExcludedJoules, 9);
        Assert.Equal(60, rep.ExcludedSeconds, 9);
    }

    [Fact]
    public void A_failing_meter_is_replaced_by_the_fallback_and_marked_estimated()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter();
        var fallback = new FakeEnergyMeter { Estimate = true, Id = "fallback", Joules = 500 };
        var acc = new EnergyAccountant(meter, clock, fallback: fallback);
        clock.AdvanceSeconds(1); meter.Joules += 10; fallback.Joules += 8;
        Assert.False(acc.RecordStep(0, 1).Estimated);
        clock.AdvanceSeconds(1); meter.Fail = true; fallback.Joules += 9;
        var r = acc.RecordStep(1, 1);
        Assert.True(r.Estimated);
        Assert.Equal("fallback", r.Meter);
        Assert.Equal(9, r.Joules, 9); // charged from the fallback since the last mark
        clock.AdvanceSeconds(1); fallback.Joules += 7;
        Assert.Equal(7, acc.RecordStep(2, 1).Joules, 9);
        var rep = acc.Report();
        Assert.Equal(26, rep.Joules, 9);
        Assert.True(rep.Estimated);
        Assert.Single(rep.Warnings);
        Assert.Contains("fake failed", rep.Warnings[0]);

        var other = new EnergyAccountant(new FakeEnergyMeter(), clock);
        Assert.Throws<ArgumentOutOfRangeException>(() => other.RecordStep(0, -1));
    }

    [Fact]
    public void Grid_intensity_is_validated()
    {
        Assert.Equal(400, EnergyAccountingOptions.DefaultGridIntensityGramsPerKwh);
        Assert.Throws<ArgumentOutOfRangeException>(() => new EnergyAccountant(new FakeEnergyMeter(), new ManualClock(), new EnergyAccountingOptions(-1)));
    }
}
