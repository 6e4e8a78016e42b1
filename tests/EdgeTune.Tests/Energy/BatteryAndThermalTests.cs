using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class BatteryAndThermalTests
{
    [Fact]
    public void Battery_discharging_then_plugged_in()
    {
        using var fs = new FakeSysfs();
        fs.AddMains("AC", online: false);
        fs.AddBattery("BAT0", "Discharging", 80, powerNowUw: 10_000_000, energyNowUwh: 40_000_000);
        var clock = new ManualClock();
        var meter = Assert.Single(BatteryMeter.Discover(fs.Sysfs(), clock));
        var source = new LinuxPowerStateSource(fs.Sysfs());

        var s0 = source.Read();
        Assert.Equal(false, s0.OnAc);
        Assert.True(s0.OnBattery);
        Assert.Equal(80, s0.BatteryPercent);
        Assert.Equal(BatteryStatus.Discharging, s0.BatteryStatus);
        Assert.Equal(10.0, s0.PowerWatts!.Value, 9);

        Assert.Equal(0, meter.ReadJoules());
        clock.AdvanceSeconds(10);
        Assert.Equal(100.0, meter.ReadJoules(), 9); // 10 W × 10 s
        fs.SetSupply("BAT0", "power_now", "20000000");
        fs.SetSupply("BAT0", "energy_now", "39900000"); // 0.1 Wh = 360 J less stored
        clock.AdvanceSeconds(10);
        Assert.Equal(250.0, meter.ReadJoules(), 9); // trapezoid: (10 + 20) / 2 × 10
        Assert.Equal(360.0, meter.StoredEnergyDischargeJoules!.Value, 6);

        // Plugged in: charging, the battery no longer sees the machine's consumption.
        fs.SetSupply("AC", "online", "1");
        fs.SetSupply("BAT0", "status", "Charging");
        fs.SetSupply("BAT0", "energy_now", "40000000");
        clock.AdvanceSeconds(10);
        double afterPlug = meter.ReadJoules(); // ramps from 20 W to 0 W
        Assert.Equal(350.0, afterPlug, 9);
        clock.AdvanceSeconds(100);
        Assert.Equal(afterPlug, meter.ReadJoules(), 9);
        Assert.Equal(360.0, meter.StoredEnergyDischargeJoules!.Value, 6);

        var s1 = source.Read();
        Assert.Equal(true, s1.OnAc);
        Assert.False(s1.OnBattery);
        Assert.Equal(BatteryStatus.Charging, s1.BatteryStatus);
        Assert.Null(s1.PowerWatts);
    }

    [Fact]
    public void Battery_power_from_current_and_voltage_and_energy_from_charge()
    {
        using var fs = new FakeSysfs();
        fs.AddBattery("BAT1", "Discharging", 50);
        fs.SetSupply("BAT1", "current_now", "-1500000"); // some drivers sign the current
        fs.SetSupply("BAT1", "voltage_now", "12000000");
        fs.SetSupply("BAT1", "charge_now", "2000000"); // 2 Ah
        var r = PowerSupplyReading.Read(fs.Sysfs(), fs.Supply("BAT1"));
        Assert.True(r.IsBattery);
        Assert.Equal(18.0, r.PowerWatts!.Value, 9);
        Assert.Equal(2.0 * 12.0 * 3600, r.EnergyJoules!.Value, 6);
        Assert.Equal(50, r.CapacityPercent);
    }

    [Fact]
    public void Discovery_uses_a_discharging_battery_when_there_is_no_rapl()
    {
        using var fs = new FakeSysfs();
        fs.AddBattery("BAT0", "Discharging", 70, powerNowUw: 7_500_000);
        fs.AddBattery("hidpp_battery_0", "Discharging", 30, powerNowUw: 1);
        fs.SetSupply("hidpp_battery_0", "scope", "Device"); // a mouse
        var set = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(fs.Sysfs(), new ManualClock(), ProbeGpu: false));
        Assert.Equal("battery:BAT0", set.Total.Id);
        Assert.Equal(MeasureKind.Battery, set.Total.Scope.Kind);
        Assert.Contains("whole machine", set.TotalExplanation);
        Assert.DoesNotContain(set.Meters, m => m.Meter.Id.Contains("hidpp", StringComparison.Ordinal));

        fs.SetSupply("BAT0", "status", "Charging");
        var onAc = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(fs.Sysfs(), new ManualClock(), ProbeGpu: false));
        Assert.Equal("estimate:cpu-time", onAc.Total.Id);
    }

    [Fact]
    public void Battery_without_power_figures_is_unavailable()
    {
        using var fs = new FakeSysfs();
        fs.AddBattery("BAT0", "Discharging", 70);
        var m = new BatteryMeter(fs.Sysfs(), fs.Supply("BAT0"), new ManualClock());
        Assert.False(m.Availability.IsAvailable);
        Assert.Throws<EnergyMeterException>(() => m.ReadJoules());
    }

    [Fact]
    public void Thermal_zones_rising_and_falling()
    {
        using var fs = new FakeSysfs();
        fs.AddThermal(0, "acpitz", 40.0);
        fs.AddThermal(1, "x86_pkg_temp", 55.5);
        fs.AddThermal(2, "iwlwifi_1", -273.2); // sensor off: ignored
        var zones = new ThermalZones(fs.Sysfs());
        var all = zones.Read();
        Assert.Equal(["acpitz", "x86_pkg_temp"], all.Select(z => z.Type));
        Assert.Equal(55.5, zones.MaxCelsius());
        var source = new LinuxPowerStateSource(fs.Sysfs());
        double?[] seen = new double?[6];
        double[] path = [60, 70, 81.25, 75, 62, 45];
        for (int i = 0; i < path.Length; i++)
        {
            fs.SetThermal(1, path[i]);
            seen[i] = source.Read().MaxTemperatureCelsius;
        }
        Assert.Equal([60, 70, 81.25, 75, 62, 45], seen.Select(s => s!.Value));
        Assert.Contains("x86_pkg_temp 45.0 °C", ThermalZones.Describe(zones.Read()));
    }

    [Fact]
    public void Empty_tree_gives_unknown_power_state_and_an_estimate()
    {
        using var fs = new FakeSysfs();
        var state = new LinuxPowerStateSource(fs.Sysfs()).Read();
        Assert.Null(state.OnAc);
        Assert.Equal(BatteryStatus.NoBattery, state.BatteryStatus);
        Assert.Null(state.MaxTemperatureCelsius);
        var set = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(fs.Sysfs(), new ManualClock(), ProbeGpu: false));
        Assert.True(set.Total.IsEstimate);
        Assert.Contains("ESTIMATED", set.TotalExplanation);
    }

    [Fact]
    public void Sysfs_root_comes_from_the_environment_setting()
    {
        Assert.Equal("EDGETUNE_SYSFS_ROOT", SysfsRoot.EnvironmentVariable);
        var root = new SysfsRoot("/tmp/x");
        Assert.Equal(Path.Combine("/tmp/x", "sys/class/powercap"), root.Resolve("/sys/class/powercap"));
    }
}
