using System.Diagnostics;
using System.Text.Json.Nodes;

namespace EdgeTune.Bench.Common;

/// <summary>Wall time per tape op kind, forward and backward, collected through the tape's
/// benchmark hook; what the ops do not cover (optimizer, clipping, data, tape bookkeeping) is "other".</summary>
public sealed class OpProfile
{
    private readonly Dictionary<string, (long Fwd, long Bwd, int Calls)> _ticks = new(StringComparer.Ordinal);

    public void Add(string name, bool backward, long ticks)
    {
        var e = _ticks.GetValueOrDefault(name);
        _ticks[name] = backward ? (e.Fwd, e.Bwd + ticks, e.Calls) : (e.Fwd + ticks, e.Bwd, e.Calls + 1);
    }

    private static double Sec(long ticks) => ticks / (double)Stopwatch.Frequency;

    /// <summary>Lines of a table: op, forward s, backward s, share of <paramref name="wall"/>.</summary>
    public IEnumerable<string> Describe(double wall)
    {
        yield return $"  {"op",-22} {"calls",6} {"fwd s",8} {"bwd s",8} {"share",7}";
        double covered = 0;
        foreach (var (name, e) in _ticks.OrderByDescending(k => k.Value.Fwd + k.Value.Bwd))
        {
            double s = Sec(e.Fwd + e.Bwd);
            covered += s;
            yield return $"  {name,-22} {e.Calls,6} {Sec(e.Fwd),8:F3} {Sec(e.Bwd),8:F3} {s / wall,7:P1}";
        }
        yield return $"  {"other (optimizer, clip, data)",-22}        {"",8} {"",8} {(wall - covered) / wall,7:P1}  ({wall - covered:F3} s)";
    }

    /// <summary>Share of <paramref name="wall"/> per op kind (forward + backward) and "other".</summary>
    public JsonObject Shares(double wall)
    {
        var o = new JsonObject();
        double covered = 0;
        foreach (var (name, e) in _ticks.OrderByDescending(k => k.Value.Fwd + k.Value.Bwd))
        {
            double s = Sec(e.Fwd + e.Bwd);
            covered += s;
            o[name] = Json.Number(s / wall, 3);
        }
        o["other"] = Json.Number((wall - covered) / wall, 3);
        return o;
    }
}
