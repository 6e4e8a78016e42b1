using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class PlatformParserTests
{
    [Fact]
    public void Nvidia_smi_output_is_parsed_per_gpu()
    {
        const string output = "35.20, 41\n287.51, 78\n[N/A], 33\n\n";
        var s = NvidiaSmi.Parse(output);
        Assert.Equal(3, s.Count);
        Assert.Equal(new NvidiaSmiSample(0, 35.20, 41), s[0]);
        Assert.Equal(new NvidiaSmiSample(1, 287.51, 78), s[1]);
        Assert.Null(s[2].PowerWatts);
        Assert.Equal(33, s[2].TemperatureCelsius);
        Assert.Equal(new NvidiaSmiSample(0, 12.5, null), NvidiaSmi.Parse("12.50 W, [Not Supported]\r\n")[0]);
        Assert.Empty(NvidiaSmi.Parse(""));
        var e = Assert.Throws<FormatException>(() => NvidiaSmi.Parse("35.20\n"));
        Assert.Contains("line 1", e.Message);
    }

    [Fact]
    public void Nvidia_smi_meter_integrates_the_reported_power()
    {
        var clock = new ManualClock();
        string output = "100.0, 50\n40.0, 45\n";
        var gpu1 = new NvidiaSmiGpuMeter(1, () => output, clock);
        Assert.Equal("gpu:1", gpu1.Id);
        Assert.Equal(MeasureKind.Gpu, gpu1.Scope.Kind);
        Assert.Equal(0, gpu1.ReadJoules());
        clock.AdvanceSeconds(2);
        Assert.Equal(80.0, gpu1.ReadJoules(), 9); // 40 W × 2 s
        output = "100.0, 50\n60.0, 47\n";
        clock.AdvanceSeconds(1);
        Assert.Equal(130.0, gpu1.ReadJoules(), 9); // + (40 + 60) / 2 × 1
        var gpu5 = new NvidiaSmiGpuMeter(5, () => output, clock);
        Assert.Throws<EnergyMeterException>(() => gpu5.ReadJoules());
    }

    [Fact]
    public void Nvml_absent_or_present_is_reported_without_failing()
    {
        var (meters, reason) = NvmlGpuMeter.Discover(new ManualClock());
        if (meters.Count == 0) Assert.False(string.IsNullOrWhiteSpace(reason));
        else
        {
            Assert.Null(reason);
            Assert.All(meters, m => Assert.Equal(MeasureKind.Gpu, m.Scope.Kind));
            Assert.All(meters, m => Assert.True(m.ReadJoules() >= 0));
        }
    }

    [Fact]
    public void Windows_system_power_status_fields_are_interpreted()
    {
        var onBattery = WindowsPowerStateSource.FromRaw(0, 1, 57);
        Assert.Equal(false, onBattery.OnAc);
        Assert.Equal(57, onBattery.BatteryPercent);
        Assert.Equal(BatteryStatus.Discharging, onBattery.BatteryStatus);

        var charging = WindowsPowerStateSource.FromRaw(1, 8 | 1, 80);
        Assert.Equal(true, charging.OnAc);
        Assert.Equal(BatteryStatus.Charging, charging.BatteryStatus);

        var full = WindowsPowerStateSource.FromRaw(1, 1, 100);
        Assert.Equal(BatteryStatus.Full, full.BatteryStatus);

        var desktop = WindowsPowerStateSource.FromRaw(1, 128, 255);
        Assert.Equal(BatteryStatus.NoBattery, desktop.BatteryStatus);
        Assert.Null(desktop.BatteryPercent);

        var unknown = WindowsPowerStateSource.FromRaw(255, 255, 255);
        Assert.Null(unknown.OnAc);
        Assert.Equal(BatteryStatus.Unknown, unknown.BatteryStatus);
        Assert.Null(unknown.BatteryPercent);

        if (!OperatingSystem.IsWindows()) Assert.Null(new WindowsPowerStateSource().Read().OnAc);
    }

    [Fact]
    public void Pmset_output_is_parsed()
    {
        var battery = MacPowerStateSource.Parse(
            "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=4653155)\t85%; discharging; 4:15 remaining present: true\n");
        Assert.Equal(false, battery.OnAc);
        Assert.Equal(85, battery.BatteryPercent);
        Assert.Equal(BatteryStatus.Discharging, battery.BatteryStatus);

        var charged = MacPowerStateSource.Parse(
            "Now drawing from 'AC Power'\n -InternalBattery-0 (id=4653155)\t100%; charged; 0:00 remaining present: true\n");
        Assert.Equal(true, charged.OnAc);
        Assert.Equal(BatteryStatus.Full, charged.BatteryStatus);

        var charging = MacPowerStateSource.Parse(
            "Now drawing from 'AC Power'\n -InternalBattery-0 (id=123)\t42%; charging; 1:20 remaining present: true\n");
        Assert.Equal(BatteryStatus.Charging, charging.BatteryStatus);
        Assert.Equal(42, charging.BatteryPercent);

        var held = MacPowerStateSource.Parse(
            "Now drawing from 'AC Power'\n -InternalBattery-0 (id=123)\t80%; AC attached; not charging present: true\n");
        Assert.Equal(BatteryStatus.NotCharging, held.BatteryStatus);

        var mini = MacPowerStateSource.Parse("Now drawing from 'AC Power'\n");
        Assert.Equal(true, mini.OnAc);
        Assert.Equal(BatteryStatus.NoBattery, mini.BatteryStatus);

        var viaSource = new MacPowerStateSource(() => "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t9%; discharging; 0:20 remaining present: true").Read();
        Assert.Equal(9, viaSource.BatteryPercent);
    }

    [Fact]
    public void Cpu_time_estimate_is_labelled_and_scales_with_cpu_time()
    {
        var cpu = TimeSpan.FromSeconds(5);
        var profile = new DeviceProfile("test", 40, 8); // 5 W per core
        var m = new CpuTimeEstimateMeter(profile, () => cpu);
        Assert.True(m.IsEstimate);
        Assert.Equal(MeasureKind.Estimate, m.Scope.Kind);
        Assert.Contains("ESTIMATE", m.Scope.Label);
        Assert.Equal(0, m.ReadJoules());
        cpu += TimeSpan.FromSeconds(3); // e.g. 3 threads busy for 1 s
        Assert.Equal(15.0, m.ReadJoules(), 9);
        cpu -= TimeSpan.FromSeconds(1); // a misbehaving source never makes the counter go back
        Assert.Equal(15.0, m.ReadJoules(), 9);

        var real = new CpuTimeEstimateMeter();
        real.ReadJoules();
        double x = 0;
        for (int i = 0; i < 2_000_000; i++) x += Math.Sqrt(i);
        Assert.True(x > 0);
        Assert.True(real.ReadJoules() >= 0);
    }

    [Fact]
    public void Device_profiles_and_units_parse()
    {
        Assert.Equal(1.6, DeviceProfile.Parse("raspberry-pi-4").WattsPerCore, 9);
        Assert.Equal(2.5, DeviceProfile.Parse("20:8").WattsPerCore, 9);
        Assert.Equal(10.0, DeviceProfile.Default.WattsPerCore, 9);
        Assert.Throws<FormatException>(() => DeviceProfile.Parse("nonsense"));

        Assert.Equal(18000, EnergyUnits.ParseEnergy("5Wh"), 9);
        Assert.Equal(18000, EnergyUnits.ParseEnergy("18kJ"), 9);
        Assert.Equal(3.6e6, EnergyUnits.ParseEnergy("1 kWh"), 9);
        Assert.Equal(2e6, EnergyUnits.ParseEnergy("2MJ"), 9);
        Assert.Equal(36, EnergyUnits.ParseEnergy("10mWh"), 9);
        Assert.Equal(42, EnergyUnits.ParseEnergy("42"), 9);
        Assert.Equal(10, EnergyUnits.ParsePower("10W"), 9);
        Assert.Equal(0.5, EnergyUnits.ParsePower("500mW"), 9);
        Assert.Equal(1500, EnergyUnits.ParsePower("1.5kW"), 9);
        Assert.Throws<FormatException>(() => EnergyUnits.ParsePower("-3W"));
        Assert.Throws<FormatException>(() => EnergyUnits.ParseEnergy("5 furlongs"));
        Assert.Throws<FormatException>(() => EnergyUnits.ParseEnergy("5mJ"));
        Assert.Equal("1.5 kJ", EnergyUnits.FormatJoules(1500));
    }
}
