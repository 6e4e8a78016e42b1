using System.Runtime.InteropServices;

namespace EdgeTune.Energy;

/// <summary>The power state on Windows from <c>GetSystemPowerStatus</c> (kernel32; no administrator
/// rights): AC line status and battery percent. Windows gives no temperature or power here.</summary>
public sealed partial class WindowsPowerStateSource : IPowerStateSource
{
    [StructLayout(LayoutKind.Sequential)]
    private struct SystemPowerStatus
    {
        public byte ACLineStatus;
        public byte BatteryFlag;
        public byte BatteryLifePercent;
        public byte SystemStatusFlag;
        public int BatteryLifeTime;
        public int BatteryFullLifeTime;
    }

    [LibraryImport("kernel32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool GetSystemPowerStatus(out SystemPowerStatus status);

    public PowerState Read()
    {
        if (!OperatingSystem.IsWindows()) return PowerState.Unknown with { Source = "GetSystemPowerStatus (not Windows)" };
        if (!GetSystemPowerStatus(out var s))
            return PowerState.Unknown with { Source = $"GetSystemPowerStatus failed (error {Marshal.GetLastPInvokeError()})" };
        return FromRaw(s.ACLineStatus, s.BatteryFlag, s.BatteryLifePercent);
    }

    /// <summary>Interprets the fields of SYSTEM_POWER_STATUS: ACLineStatus 0 offline / 1 online / 255 unknown;
    /// BatteryFlag bits 8 charging, 128 no system battery, 255 unknown; BatteryLifePercent 0-100 or 255 unknown.</summary>
    public static PowerState FromRaw(byte acLineStatus, byte batteryFlag, byte batteryLifePercent)
    {
        bool? onAc = acLineStatus switch { 0 => false, 1 => true, _ => null };
        BatteryStatus status;
        if (batteryFlag == 255) status = BatteryStatus.Unknown;
        else if ((batteryFlag & 128) != 0) status = BatteryStatus.NoBattery;
        else if ((batteryFlag & 8) != 0) status = BatteryStatus.Charging;
        else if (onAc == false) status = BatteryStatus.Discharging;
        else if (onAc == true && batteryLifePercent == 100) status = BatteryStatus.Full;
        else if (onAc == true) status = BatteryStatus.NotCharging;
        else status = BatteryStatus.Unknown;
        double? percent = batteryLifePercent <= 100 && status != BatteryStatus.NoBattery ? batteryLifePercent : null;
        return new PowerState(onAc, percent, status, null, null, "GetSystemPowerStatus");
    }
}
