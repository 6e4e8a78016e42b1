using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class PowerPolicyTests
{
    /// <summary>A stand-in for training: a deterministic update per step, so a paused run can be compared
    /// with an unpaused one bit for bit, and a log of the steps run (each exactly once, in order).</summary>
    private sealed class ToyTraining
    {
        public double Weight = 1.0;
        public List<long> Steps { get; } = [];
        public List<(long Next, string Reason)> Checkpoints { get; } = [];

        public void Step(long s)
        {
            Steps.Add(s);
            Weight = Weight * 0.97 + Math.Sin(s) * 0.01;
        }

        public static double Unpaused(long steps)
        {
            var t = new ToyTraining();
            for (long s = 0; s < steps; s++) t.Step(s);
            return t.Weight;
        }
    }

    private static PowerAwareLoop Loop(PolicyEngine engine, ManualClock clock, ToyTraining t, Action<TimeSpan>? onDelay = null,
        Action<int>? setThreads = null) =>
        new(engine, clock, clock.AsDelay(onDelay))
        {
            Checkpoint = (next, reason, _) => { t.Checkpoints.Add((next, reason)); return Task.CompletedTask; },
            SetThreads = setThreads,
        };

    [Fact]
    public async Task Only_on_ac_pauses_on_battery_and_resumes_when_plugged_in()
    {
        var clock = new ManualClock();
        var state = new FixedPowerStateSource(new PowerState(true, 90, BatteryStatus.Full, null, null));
        var engine = new PolicyEngine([new OnlyOnAcPolicy(TimeSpan.FromSeconds(30))], state, null, clock);
        var t = new ToyTraining();
        int polls = 0;
        var loop = Loop(engine, clock, t, onDelay: _ =>
        {
            if (++polls == 3) state.State = state.State with { OnAc = true, BatteryStatus = BatteryStatus.Charging };
        });

        var result = await loop.RunAsync((s, _) =>
        {
            t.Step(s);
            clock.AdvanceSeconds(1);
            if (s == 4) state.State = state.State with { OnAc = false, BatteryStatus = BatteryStatus.Discharging };
            return Task.CompletedTask;
        }, 0, 10);

        Assert.True(result.Completed);
        Assert.Equal(10, result.NextStep);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), t.Steps);
        Assert.Equal(ToyTraining.Unpaused(10), t.Weight);
        Assert.Equal(1, result.Pauses);
        Assert.Equal(TimeSpan.FromSeconds(90), result.PausedTime);
        var cp = Assert.Single(t.Checkpoints);
        Assert.Equal(5, cp.Next);
        Assert.Contains("battery", cp.Reason);
        Assert.Equal([PowerLoopEventKind.Paused, PowerLoopEventKind.Resumed, PowerLoopEventKind.Completed], result.Events.Select(e => e.Kind));
        Assert.Equal(5, result.Events[0].Step);
    }

    [Fact]
    public async Task Battery_floor_pauses_at_the_floor_and_resumes_only_above_the_hysteresis()
    {
        using var fs = new FakeSysfs();
        fs.AddMains("AC", online: false);
        fs.AddBattery("BAT0", "Discharging", 34, powerNowUw: 12_000_000);
        var clock = new ManualClock();
        var options = new PowerPolicyOptions(MinBatteryPercent: 30, BatteryHysteresisPercent: 5, PollSeconds: 60);
        var engine = new PolicyEngine(options.CreatePolicies(), new LinuxPowerStateSource(fs.Sysfs()), null, clock);
        var t = new ToyTraining();
        int capacity = 34;
        var seenWhilePaused = new List<int>();
        var loop = Loop(engine, clock, t, onDelay: _ =>
        {
            // Resting battery: the reading recovers, 30 -> 31 -> 32 -> 33 -> 34 -> 35 (resume).
            seenWhilePaused.Add(capacity);
            capacity++;
            fs.SetSupply("BAT0", "capacity", capacity.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });

        var result = await loop.RunAsync((s, _) =>
        {
            t.Step(s);
            clock.AdvanceSeconds(1);
            if (s < 4) { capacity--; fs.SetSupply("BAT0", "capacity", capacity.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
            return Task.CompletedTask;
        }, 0, 8);

        Assert.True(result.Completed);
        Assert.Equal(ToyTraining.Unpaused(8), t.Weight);
        Assert.Equal([30, 31, 32, 33, 34], seenWhilePaused); // not resumed at 31..34
        Assert.Equal(4, Assert.Single(t.Checkpoints).Next);
        Assert.Equal(TimeSpan.FromMinutes(5), result.PausedTime);
        Assert.Contains("resumes at 35%", t.Checkpoints[0].Reason);
    }

    [Fact]
    public async Task Battery_floor_resumes_when_plugged_in()
    {
        using var fs = new FakeSysfs();
        fs.AddMains("AC", online: false);
        fs.AddBattery("BAT0", "Discharging", 20, powerNowUw: 12_000_000);
        var clock = new ManualClock();
        var engine = new PolicyEngine([new BatteryFloorPolicy(30, pollInterval: TimeSpan.FromSeconds(10))],
            new LinuxPowerStateSource(fs.Sysfs()), null, clock);
        var t = new ToyTraining();
        int polls = 0;
        var loop = Loop(engine, clock, t, onDelay: _ =>
        {
            if (++polls == 2)
            {
                fs.SetSupply("AC", "online", "1");
                fs.SetSupply("BAT0", "status", "Charging");
            }
        });
        var result = await loop.RunAsync((s, _) => { t.Step(s); return Task.CompletedTask; }, 0, 3);
        Assert.True(result.Completed);
        Assert.Equal(0, Assert.Single(t.Checkpoints).Next); // paused before the first step
        Assert.Equal(2, polls);
        Assert.Equal(ToyTraining.Unpaused(3), t.Weight);
    }

    [Fact]
    public async Task Thermal_ceiling_backs_off_until_cooler()
    {
        using var fs = new FakeSysfs();
        fs.AddThermal(0, "x86_pkg_temp", 60);
        var clock = new ManualClock();
        var engine = new PolicyEngine([new ThermalCeilingPolicy(75, 5, TimeSpan.FromSeconds(10))],
            new LinuxPowerStateSource(fs.Sysfs()), null, clock);
        var t = new ToyTraining();
        double temp = 60;
        var tempsWhilePaused = new List<double>();
        var loop = Loop(engine, clock, t, onDelay: _ =>
        {
            tempsWhilePaused.Add(temp);
            temp -= 2; // cooling while idle
            fs.SetThermal(0, temp);
        });
        var result = await loop.RunAsync((s, _) =>
        {
            t.Step(s);
            temp += 5; // heating while training
            fs.SetThermal(0, temp);
            return Task.CompletedTask;
        }, 0, 6);

        Assert.True(result.Completed);
        Assert.Equal(ToyTraining.Unpaused(6), t.Weight);
        // 60 -> 65 -> 70 -> 75: pause before step 3; cools to 69 (<= 75 - 5), not resuming at 73 or 71;
        // steps 3 and 4 heat it to 79: pause again before step 5.
        Assert.Equal([3L, 5L], t.Checkpoints.Select(c => c.Next));
        Assert.Equal([75, 73, 71, 79, 77, 75, 73, 71], tempsWhilePaused);
        Assert.Equal(2, result.Pauses);
        Assert.Contains("cooling down to 70", t.Checkpoints[0].Reason);
    }

    [Fact]
    public async Task Energy_budget_stops_cleanly_and_a_resumed_run_loses_nothing()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter();
        var engine = new PolicyEngine([new EnergyBudgetPolicy(95)], new FixedPowerStateSource(PowerState.Unknown), meter, clock);
        var t = new ToyTraining();
        Task Step(long s, CancellationToken _) { t.Step(s); meter.Joules += 10; clock.AdvanceSeconds(1); return Task.CompletedTask; }

        var first = await Loop(engine, clock, t).RunAsync(Step, 0, 20);
        Assert.False(first.Completed);
        Assert.Equal(10, first.NextStep); // 100 J >= 95 J after 10 steps
        Assert.Equal(10, first.StepsRun);
        Assert.Contains("energy budget", first.StopReason);
        Assert.Equal((10L, first.StopReason!), Assert.Single(t.Checkpoints));
        Assert.Equal(PowerLoopEventKind.Stopped, first.Events[^1].Kind);

        // Resume from the checkpoint with a fresh budget: the run ends exactly as an uninterrupted one.
        var engine2 = new PolicyEngine([new EnergyBudgetPolicy(1000)], new FixedPowerStateSource(PowerState.Unknown), meter, clock);
        var second = await Loop(engine2, clock, t).RunAsync(Step, first.NextStep, 20);
        Assert.True(second.Completed);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), t.Steps);
        Assert.Equal(ToyTraining.Unpaused(20), t.Weight);

        var predictive = new PolicyEngine([new EnergyBudgetPolicy(95, stopBeforeExceeding: true)], new FixedPowerStateSource(PowerState.Unknown), meter, clock);
        var t3 = new ToyTraining();
        var third = await Loop(predictive, clock, t3).RunAsync(Step, 0, 20);
        Assert.Equal(9, third.NextStep); // 90 J + a 10 J step would exceed 95 J
    }

    [Fact]
    public async Task Power_cap_holds_the_average_under_the_cap()
    {
        // Machine model: 2 W idle + 3 W per busy thread; each step is 8 thread-seconds of work.
        const double idle = 2, perThread = 3, work = 8, cap = 10;
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter();
        int threads = 8;
        var engine = new PolicyEngine([new PowerCapPolicy(cap)], new FixedPowerStateSource(PowerState.Unknown), meter, clock, maxThreads: 8);
        var t = new ToyTraining();
        var threadLog = new List<int>();
        var loop = Loop(engine, clock, t,
            onDelay: d => meter.Joules += idle * d.TotalSeconds,
            setThreads: n => threads = n);
        var marks = new List<(double Time, double Joules)>();
        var result = await loop.RunAsync((s, _) =>
        {
            t.Step(s);
            threadLog.Add(threads);
            double seconds = work / threads;
            meter.Joules += (idle + perThread * threads) * seconds;
            clock.AdvanceSeconds(seconds);
            marks.Add((clock.Elapsed.TotalSeconds, meter.Joules));
            return Task.CompletedTask;
        }, 0, 80);

        Assert.True(result.Completed);
        Assert.Equal(ToyTraining.Unpaused(80), t.Weight);
        Assert.Equal(8, threadLog[0]); // unthrottled until measured
        Assert.True(threadLog[^1] < 8);
        // Average over the last 40 steps (sleeps included).
        var (t0, j0) = marks[39];
        var (t1, j1) = marks[^1];
        double avg = (j1 - j0) / (t1 - t0);
        Assert.InRange(avg, 0.8 * cap, cap);
        Assert.True(result.SleptTime > TimeSpan.Zero);
        Assert.Contains(result.Events, e => e.Kind == PowerLoopEventKind.Throttled && e.Reason.Contains("power cap 10 W"));
    }

    [Fact]
    public void Decisions_combine_stop_over_pause_over_throttle()
    {
        var pause = new PolicyDecision.Pause("hot", TimeSpan.FromSeconds(10));
        var pause2 = new PolicyDecision.Pause("battery", TimeSpan.FromSeconds(30));
        var th1 = new PolicyDecision.Throttle(4, TimeSpan.FromSeconds(1), "a");
        var th2 = new PolicyDecision.Throttle(2, TimeSpan.FromSeconds(0.5), "b");
        var stop = new PolicyDecision.Stop("budget");
        Assert.Same(stop, PolicyDecision.Combine([th1, pause, stop]));
        var p = Assert.IsType<PolicyDecision.Pause>(PolicyDecision.Combine([th1, pause2, pause]));
        Assert.Equal(TimeSpan.FromSeconds(10), p.PollInterval);
        Assert.Equal("battery; hot", p.Why);
        var t = Assert.IsType<PolicyDecision.Throttle>(PolicyDecision.Combine([th1, PolicyDecision.Go, th2]));
        Assert.Equal(2, t.Threads);
        Assert.Equal(TimeSpan.FromSeconds(1), t.SleepAfterStep);
        Assert.Equal(PolicyAction.Continue, PolicyDecision.Combine([]).Action);
    }

    [Fact]
    public async Task Stop_while_paused_writes_one_checkpoint_per_event_and_cancellation_propagates()
    {
        var clock = new ManualClock();
        var meter = new FakeEnergyMeter();
        var state = new FixedPowerStateSource(new PowerState(false, 50, BatteryStatus.Discharging, null, null));
        var engine = new PolicyEngine([new OnlyOnAcPolicy(TimeSpan.FromSeconds(5)), new EnergyBudgetPolicy(10)], state, meter, clock);
        var t = new ToyTraining();
        var loop = Loop(engine, clock, t, onDelay: _ => meter.Joules += 4); // idle energy during the pause counts
        var r = await loop.RunAsync((s, _) => { t.Step(s); return Task.CompletedTask; }, 0, 5);
        Assert.False(r.Completed);
        Assert.Empty(t.Steps);
        Assert.Equal(2, t.Checkpoints.Count); // one before pausing, one before stopping
        Assert.Equal(TimeSpan.FromSeconds(15), r.PausedTime);

        using var cts = new CancellationTokenSource();
        var engine2 = new PolicyEngine([], state, null, clock);
        var loop2 = Loop(engine2, clock, t);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            loop2.RunAsync((s, _) => { if (s == 2) cts.Cancel(); return Task.CompletedTask; }, 0, 5, cts.Token));
    }

    [Fact]
    public void Options_validate_and_build_the_policies()
    {
        var o = new PowerPolicyOptions(OnlyOnAc: true, MinBatteryPercent: 30, MaxTemperatureCelsius: 75,
            PowerCapWatts: EnergyUnits.ParsePower("10W"), EnergyBudgetJoules: EnergyUnits.ParseEnergy("5Wh"));
        var names = o.CreatePolicies().Select(p => p.Name).ToList();
        Assert.Equal(["energy-budget 5 Wh", "only-on-ac", "min-battery 30%", "max-temp 75 °C", "power-cap 10 W"], names);
        Assert.Contains("resume at 35%", o.ToString());
        Assert.True(PowerPolicyOptions.None.IsEmpty);
        Assert.Empty(PowerPolicyOptions.None.CreatePolicies());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PowerPolicyOptions(MinBatteryPercent: 130).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PowerPolicyOptions(PowerCapWatts: 0).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThermalCeilingPolicy(75, 80));
    }
}
