using EdgeTune.Federated.Aggregation;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Aggregation;

internal static class AggregationTestData
{
    /// <summary><paramref name="honest"/> updates near a common direction plus <paramref name="poisoned"/> huge ones.</summary>
    public static List<ClientUpdate> Updates(int length, int honest, int poisoned, ulong seed, out float[] center)
    {
        var rng = new Rng(seed);
        center = new float[length];
        rng.FillGaussian(center, 0, 1);
        var list = new List<ClientUpdate>();
        for (int c = 0; c < honest; c++)
        {
            var d = new float[length];
            for (int i = 0; i < length; i++) d[i] = center[i] + (float)(0.01 * rng.NextGaussian());
            list.Add(new ClientUpdate($"honest{c}", d, 10 + c));
        }
        for (int c = 0; c < poisoned; c++)
        {
            var d = new float[length];
            for (int i = 0; i < length; i++) d[i] = 1e6f * (1 + c);
            list.Add(new ClientUpdate($"evil{c}", d, 1000));
        }
        return list;
    }
}
