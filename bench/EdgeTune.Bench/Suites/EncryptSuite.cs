using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Security;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// What encryption at rest costs on a SmolLM2-135M-shaped model (random weights, real shapes): writing a full
/// fine-tuning checkpoint (weights, AdamW moments, state, manifest with checksums) plain vs encrypted, and loading the
/// model's weights plain (memory-mapped, every tensor then read once so that every page is faulted in) vs encrypted
/// (decrypted into memory, then read once). Plain is the reference, timed alternately with encrypted in the same run
/// (<see cref="Timing.BestPair"/>), on the same disk, page cache warm. Also the one-off cost of opening a
/// passphrase-encrypted folder (Argon2id t=3, m=64 MiB, p=4, once per folder and process).
/// </summary>
public sealed unsafe class EncryptSuite : IBenchSuite
{
    public string Name => "encrypt";
    public string Description => "encryption at rest: checkpoint write and model load, plain vs AES-256-GCM, SmolLM2-135M-shaped";

    public int Run(BenchOptions options)
    {
        int layers = options.Quick ? 4 : 30;
        var config = TrainSuite.Config(layers);
        string dir = Directory.CreateTempSubdirectory("edgetune-bench-encrypt-").FullName;
        using var key = EncryptionKey.Generate();
        try
        {
            using var model = DecoderModel.CreateRandom(config, seed: 7, std: 0.02f, trainable: true);
            long parameters = model.Parameters.ElementCount;
            var optimizer = new AdamW(model.Parameters);
            var state = new TrainingState { Step = 1, TotalSteps = 1 };
            var plainFiles = RunFiles.ForWriting(Path.Combine(dir, "plain"), null);
            var encFiles = RunFiles.ForWriting(Path.Combine(dir, "enc"), key);
            Console.WriteLine($"encrypt suite: SmolLM2-135M-shaped ({layers} layers, {parameters:N0} parameters, F32), {Environment.ProcessorCount} processors, " +
                $"AES-GCM hardware: {System.Runtime.Intrinsics.X86.Aes.IsSupported || System.Runtime.Intrinsics.Arm.Aes.IsSupported}; temp {dir}");

            string Ckpt(RunFiles f) => TrainingCheckpoint.Write(f, Path.Combine(f.Root!, "checkpoints"), state, model.Parameters, optimizer, keep: 1);
            Ckpt(plainFiles);
            long ckptBytes = Directory.GetFiles(Path.Combine(dir, "plain", "checkpoints"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            int reps = options.Quick ? 2 : 3;
            var (ckPlain, ckEncN) = Timing.BestPair(() => Ckpt(plainFiles), () => Ckpt(encFiles), warmup: 0, minReps: reps, maxReps: reps, budgetSeconds: 0);
            var ckEnc = ckEncN!.Value;
            long encCkptBytes = Directory.GetFiles(Path.Combine(dir, "enc", "checkpoints"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

            string plainModel = Path.Combine(dir, "plain", "model"), encModel = Path.Combine(dir, "enc", "model");
            ModelExporter.ExportSafetensors(model, plainModel, DType.F32, files: plainFiles);
            ModelExporter.ExportSafetensors(model, encModel, DType.F32, files: encFiles);
            long modelBytes = new FileInfo(Path.Combine(plainModel, "model.safetensors")).Length;
            double checksum = 0;
            void Load(string folder, EncryptionKey? k)
            {
                string weights = Path.Combine(folder, "model.safetensors");
                using var file = RunFiles.ForReading(weights, k).OpenSafeTensors(weights);
                checksum += Touch(file);
            }
            var (ldPlain, ldEncN) = Timing.BestPair(() => Load(plainModel, null), () => Load(encModel, key), warmup: 1, minReps: reps, maxReps: reps, budgetSeconds: 0);

            var ldEnc = ldEncN!.Value;
            // The cipher alone: decrypt the encrypted weights to nowhere, and into memory without parsing.
            string encWeights = Path.Combine(encModel, "model.safetensors");
            string logical = encFiles.LogicalName(encWeights);
            double toNull = Timing.BestTime(() => EncryptedFile.DecryptTo(encWeights, logical, key, Stream.Null), 1, reps, reps, 0);
            double toMemory = Timing.BestTime(() => { using var m = EncryptedFile.DecryptToMemory(encWeights, logical, key); }, 1, reps, reps, 0);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"decrypt only: to nowhere {toNull:F3}s, into memory {toMemory:F3}s"));
            // Where the plaintext goes: memory faulted in page by page (NativeStorage, the reference) vs populated in one call.
            var (faulted, populatedN) = Timing.BestPair(
                () => { using var m = new NativeStorage(modelBytes, readOnly: true, zeroOnFree: true); WritePages(m); },
                () => { using var m = DecryptedMemory.Allocate(modelBytes); WritePages(m); }, warmup: 1, minReps: reps, maxReps: reps, budgetSeconds: 0);
            var populated = populatedN!.Value;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"plaintext buffer ({modelBytes / (double)(1 << 20):F0} MiB, allocate + write + zero + free): faulted page by page {faulted.Wall:F3}s, populated {populated.Wall:F3}s"));

            // One-off: a passphrase folder's key derivation (the default Argon2id) on first open.
            using (var pass = EncryptionKey.FromPassphrase("bench passphrase"))
                RunFiles.ForWriting(Path.Combine(dir, "pass"), pass);
            var sw = Stopwatch.StartNew();
            using (var pass2 = EncryptionKey.FromPassphrase("bench passphrase"))
                RunFiles.ForReading(Path.Combine(dir, "pass"), pass2);
            double kdf = sw.Elapsed.TotalSeconds;

            var c = CultureInfo.InvariantCulture;
            double mb = 1 << 20;
            Console.WriteLine(string.Create(c, $"{"",-34} {"plain",10} {"encrypted",10} {"overhead",9}"));
            Console.WriteLine(string.Create(c, $"{"checkpoint write (" + (ckptBytes / mb).ToString("F0", c) + " MiB)",-34} {ckPlain.Wall,9:F3}s {ckEnc.Wall,9:F3}s {ckEnc.Wall / ckPlain.Wall,8:F2}x"));
            Console.WriteLine(string.Create(c, $"{"weights load + read (" + (modelBytes / mb).ToString("F0", c) + " MiB)",-34} {ldPlain.Wall,9:F3}s {ldEnc.Wall,9:F3}s {ldEnc.Wall / ldPlain.Wall,8:F2}x"));
            Console.WriteLine(string.Create(c, $"encrypted checkpoint: {encCkptBytes - ckptBytes:N0} bytes more than plain ({100.0 * (encCkptBytes - ckptBytes) / ckptBytes:F3}%); " +
                $"encrypted write {ckptBytes / mb / ckEnc.Wall:F0} MiB/s, decrypting load {modelBytes / mb / ldEnc.Wall:F0} MiB/s; " +
                $"Argon2id (t=3, m=64 MiB, p=4) folder open {kdf:F2} s once; weight checksum {checksum:G6}"));
            Json.WriteLast(new JsonObject
            {
                ["suite"] = Name, ["layers"] = layers, ["parameters"] = parameters, ["processors"] = Environment.ProcessorCount,
                ["checkpoint_bytes"] = ckptBytes, ["checkpoint_plain_s"] = Json.Number(ckPlain.Wall, 3), ["checkpoint_encrypted_s"] = Json.Number(ckEnc.Wall, 3),
                ["model_bytes"] = modelBytes, ["load_plain_s"] = Json.Number(ldPlain.Wall, 3), ["load_encrypted_s"] = Json.Number(ldEnc.Wall, 3),
                ["argon2id_open_s"] = Json.Number(kdf, 3), ["decrypt_to_null_s"] = Json.Number(toNull, 3),
                ["buffer_faulted_s"] = Json.Number(faulted.Wall, 3), ["buffer_populated_s"] = Json.Number(populated.Wall, 3),
            });
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static unsafe void WritePages(TensorStorage m)
    {
        for (long i = 0; i < m.ByteLength; i += 4096) m.Pointer[i] = 1;
    }

    /// <summary>Reads every tensor once (so a memory-mapped file is faulted in completely), returning a sum to keep it.</summary>
    private static double Touch(EdgeTune.Formats.SafeTensorsFile file)
    {
        double sum = 0;
        foreach (var info in file.Tensors)
        {
            var bytes = file.GetTensor(info.Name).Bytes;
            for (int i = 0; i < bytes.Length; i += 4096) sum += bytes[i];
        }
        return sum;
    }
}
