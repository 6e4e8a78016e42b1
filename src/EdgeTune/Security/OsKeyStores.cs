using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;

namespace EdgeTune.Security;

/// <summary>A key source backed by an operating-system key store, which can also make and keep a new key.</summary>
public abstract class StoredKeySource : KeySource
{
    /// <summary>True when the store holds the key.</summary>
    public abstract bool Exists { get; }

    /// <summary>Generates a random key, stores it (refused when one is already stored) and returns it.</summary>
    public EncryptionKey CreateKey()
    {
        var key = EncryptionKey.Generate();
        try
        {
            byte[] raw = Convert.FromBase64String(key.ExportBase64());
            try { Store(raw); }
            finally { CryptographicOperations.ZeroMemory(raw); }
        }
        catch { key.Dispose(); throw; }
        return key;
    }

    /// <summary>Keeps 32 raw key bytes; throws <see cref="IOException"/> when a key is already stored.</summary>
    protected abstract void Store(byte[] raw);

    /// <summary>
    /// The key store of the running system under <paramref name="name"/>: on Windows a DPAPI-protected key file at
    /// that path (<see cref="DpapiKeySource"/>), on Linux a user key in the kernel keyring
    /// (<see cref="LinuxKeyringKeySource"/>), on macOS a generic password in the login Keychain
    /// (<see cref="MacKeychainKeySource"/>). Elsewhere <see cref="PlatformNotSupportedException"/>.
    /// </summary>
    public static StoredKeySource ForPlatform(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (OperatingSystem.IsWindows()) return new DpapiKeySource(name);
        if (OperatingSystem.IsLinux()) return new LinuxKeyringKeySource(name);
        if (OperatingSystem.IsMacOS()) return new MacKeychainKeySource(name);
        throw new PlatformNotSupportedException($"no OS key store is supported on {RuntimeInformation.OSDescription}; use a key file or an environment variable");
    }
}

/// <summary>
/// A 32-byte key kept as a "user" key named <c>edgetune:NAME</c> in the Linux kernel's per-user keyring (add_key(2),
/// keyctl(2) through libc's <c>syscall</c>; no native package). Only processes of the same user (uid) can read it,
/// and it never touches the disk.
/// </summary>
/// <remarks>The kernel keyring is not persistent: the user keyring lives until the user's last session ends or the
/// machine reboots, and the key goes with it. Keep a copy elsewhere (an offline key file) for any run you want to read
/// after a reboot. x86-64 and arm64 only (the syscall numbers differ per architecture).</remarks>
[SupportedOSPlatform("linux")]
public sealed partial class LinuxKeyringKeySource : StoredKeySource
{
    private const int KeySpecUserKeyring = -4;
    private const int KeyctlRead = 11, KeyctlSearch = 10, KeyctlInvalidate = 21;
    private const int ENOKEY = 126, EKEYEXPIRED = 127, EKEYREVOKED = 128;

    public LinuxKeyringKeySource(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
    }

    public string Name { get; }

    /// <summary>The key's description in the keyring.</summary>
    public string KeyDescription => "edgetune:" + Name;

    public override string Description => $"Linux kernel keyring user key '{KeyDescription}'";

    public override bool Exists => Search(out _) == 0;

    public override EncryptionKey GetKey()
    {
        int err = Search(out long serial);
        if (err != 0)
            throw err is ENOKEY or EKEYEXPIRED or EKEYREVOKED
                ? new KeyNotFoundException($"{Description}: no such key in the user keyring (keys there do not survive a reboot; restore it with a key file)")
                : Failure("keyctl(KEYCTL_SEARCH)", err);
        var raw = new byte[EncryptionKey.KeyBytes + 1];
        try
        {
            long n = Syscall(Numbers().Keyctl, KeyctlRead, (nint)serial, Pin(raw, out var h), raw.Length, 0);
            h.Free();
            if (n < 0) throw Failure("keyctl(KEYCTL_READ)", Marshal.GetLastPInvokeError());
            if (n != EncryptionKey.KeyBytes) throw new CryptographicException($"{Description}: holds {n} bytes, not a {EncryptionKey.KeyBytes}-byte key");
            return EncryptionKey.FromBytes(raw.AsSpan(0, EncryptionKey.KeyBytes), Description);
        }
        finally { CryptographicOperations.ZeroMemory(raw); }
    }

    protected override void Store(byte[] raw)
    {
        if (Exists) throw new IOException($"{Description} already exists; it is not replaced");
        byte[] type = Encoding.ASCII.GetBytes("user\0"), desc = Encoding.UTF8.GetBytes(KeyDescription + "\0");
        long serial = Syscall(Numbers().AddKey, Pin(type, out var h1), Pin(desc, out var h2), Pin(raw, out var h3), raw.Length, KeySpecUserKeyring);
        int err = Marshal.GetLastPInvokeError();
        h1.Free(); h2.Free(); h3.Free();
        if (serial < 0) throw Failure("add_key", err);
    }

    /// <summary>Removes the key from the keyring (invalidates it); false when there was none.</summary>
    public bool Delete()
    {
        if (Search(out long serial) != 0) return false;
        if (Syscall(Numbers().Keyctl, KeyctlInvalidate, (nint)serial, 0, 0, 0) < 0) throw Failure("keyctl(KEYCTL_INVALIDATE)", Marshal.GetLastPInvokeError());
        return true;
    }

    // keyctl(KEYCTL_SEARCH, user keyring, "user", description, 0): 0 and the serial, or the errno.
    private int Search(out long serial)
    {
        byte[] type = Encoding.ASCII.GetBytes("user\0"), desc = Encoding.UTF8.GetBytes(KeyDescription + "\0");
        serial = Syscall(Numbers().Keyctl, KeyctlSearch, KeySpecUserKeyring, Pin(type, out var h1), Pin(desc, out var h2), 0);
        int err = Marshal.GetLastPInvokeError();
        h1.Free(); h2.Free();
        return serial < 0 ? err : 0;
    }

    private Exception Failure(string call, int errno) =>
        new IOException($"{Description}: {call} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}){(errno is 1 or 13 or 38 ? "; the kernel keyring is unavailable or refused here (a container or sandbox may block it): use a key file or an environment variable" : "")}");

    private static nint Pin(byte[] data, out GCHandle handle)
    {
        handle = GCHandle.Alloc(data, GCHandleType.Pinned);
        return handle.AddrOfPinnedObject();
    }

    private static (nint AddKey, nint Keyctl) Numbers() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => (248, 250),
        Architecture.Arm64 => (217, 219),
        var a => throw new PlatformNotSupportedException($"Linux kernel keyring: syscall numbers for {a} are not known here; use a key file or an environment variable"),
    };

    // libc's variadic syscall(2) with integer/pointer arguments only, which the x86-64 and arm64 ABIs pass like a
    // fixed-argument call.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(nint number, nint a1, nint a2, nint a3, nint a4, nint a5);
}

/// <summary>
/// A 32-byte key kept as a generic password (service "EdgeTune", account NAME) in the user's default macOS Keychain,
/// through Security.framework's SecItemAdd / SecItemCopyMatching.
/// </summary>
/// <remarks>Written against Apple's documented C API but never run by the project's tests (they run on Linux); it is
/// kept small on purpose: build the query dictionary, add or copy the item's data, release what was created.</remarks>
[SupportedOSPlatform("macos")]
public sealed partial class MacKeychainKeySource : StoredKeySource
{
    private const string SecurityLib = "/System/Library/Frameworks/Security.framework/Security";
    private const string CoreFoundationLib = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation";
    private const int ErrSecItemNotFound = -25300, ErrSecDuplicateItem = -25299;

    public MacKeychainKeySource(string account)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        Account = account;
    }

    public string Account { get; }

    public const string Service = "EdgeTune";

    public override string Description => $"macOS Keychain generic password (service {Service}, account {Account})";

    public override bool Exists => Copy(out nint data) switch
    {
        0 => Release(data),
        ErrSecItemNotFound => false,
        var s => throw Failure("SecItemCopyMatching", s),
    };

    public override EncryptionKey GetKey()
    {
        int status = Copy(out nint data);
        if (status == ErrSecItemNotFound) throw new KeyNotFoundException($"{Description}: no such item in the Keychain");
        if (status != 0) throw Failure("SecItemCopyMatching", status);
        try
        {
            long length = CFDataGetLength(data);
            if (length != EncryptionKey.KeyBytes) throw new CryptographicException($"{Description}: holds {length} bytes, not a {EncryptionKey.KeyBytes}-byte key");
            var raw = new byte[length];
            Marshal.Copy(CFDataGetBytePtr(data), raw, 0, raw.Length);
            try { return EncryptionKey.FromBytes(raw, Description); }
            finally { CryptographicOperations.ZeroMemory(raw); }
        }
        finally { CFRelease(data); }
    }

    protected override void Store(byte[] raw)
    {
        nint value = CFDataCreate(0, raw, raw.Length);
        try
        {
            int status = WithQuery(extraKey: "kSecValueData", extraValue: value, returnData: false, q => SecItemAdd(q, 0));
            if (status == ErrSecDuplicateItem) throw new IOException($"{Description} already exists; it is not replaced");
            if (status != 0) throw Failure("SecItemAdd", status);
        }
        finally { CFRelease(value); }
    }

    private int Copy(out nint data)
    {
        nint result = 0;
        int status = WithQuery(null, 0, returnData: true, q => SecItemCopyMatching(q, out result));
        data = result;
        return status;
    }

    private static bool Release(nint cf)
    {
        CFRelease(cf);
        return true;
    }

    // {class: generic password, service, account (, extra) (, return data, match one)} as a CFDictionary for the call.
    private int WithQuery(string? extraKey, nint extraValue, bool returnData, Func<nint, int> call)
    {
        nint security = NativeLibrary.Load(SecurityLib), cf = NativeLibrary.Load(CoreFoundationLib);
        nint Const(nint lib, string symbol) => Marshal.ReadIntPtr(NativeLibrary.GetExport(lib, symbol));
        nint service = CFStringCreateWithCString(0, Service, 0x08000100), account = CFStringCreateWithCString(0, Account, 0x08000100); // UTF-8
        try
        {
            var keys = new List<nint> { Const(security, "kSecClass"), Const(security, "kSecAttrService"), Const(security, "kSecAttrAccount") };
            var values = new List<nint> { Const(security, "kSecClassGenericPassword"), service, account };
            if (extraKey is not null) { keys.Add(Const(security, extraKey)); values.Add(extraValue); }
            if (returnData)
            {
                keys.Add(Const(security, "kSecReturnData")); values.Add(Const(cf, "kCFBooleanTrue"));
                keys.Add(Const(security, "kSecMatchLimit")); values.Add(Const(security, "kSecMatchLimitOne"));
            }
            nint dict = CFDictionaryCreate(0, keys.ToArray(), values.ToArray(), keys.Count,
                NativeLibrary.GetExport(cf, "kCFTypeDictionaryKeyCallBacks"), NativeLibrary.GetExport(cf, "kCFTypeDictionaryValueCallBacks"));
            try { return call(dict); }
            finally { CFRelease(dict); }
        }
        finally
        {
            CFRelease(service);
            CFRelease(account);
        }
    }

    private Exception Failure(string call, int status) => new IOException($"{Description}: {call} failed with OSStatus {status}");

    [LibraryImport(SecurityLib)] private static partial int SecItemAdd(nint attributes, nint result);
    [LibraryImport(SecurityLib)] private static partial int SecItemCopyMatching(nint query, out nint result);
    [LibraryImport(CoreFoundationLib, StringMarshalling = StringMarshalling.Utf8)] private static partial nint CFStringCreateWithCString(nint allocator, string text, uint encoding);
    [LibraryImport(CoreFoundationLib)] private static partial nint CFDataCreate(nint allocator, byte[] bytes, nint length);
    [LibraryImport(CoreFoundationLib)] private static partial nint CFDataGetBytePtr(nint data);
    [LibraryImport(CoreFoundationLib)] private static partial nint CFDataGetLength(nint data);
    [LibraryImport(CoreFoundationLib)] private static partial nint CFDictionaryCreate(nint allocator, nint[] keys, nint[] values, nint count, nint keyCallbacks, nint valueCallbacks);
    [LibraryImport(CoreFoundationLib)] private static partial void CFRelease(nint cf);
}
