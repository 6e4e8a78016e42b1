namespace EdgeTune.Privacy;

/// <summary>
/// The loss-threshold membership-inference attack (Yeom et al. 2018, "Privacy Risk in Machine Learning: Analyzing the
/// Connection to Overfitting"): a row is guessed to be a training member when the model's loss on it is low. Its
/// success over all thresholds is the ROC AUC of the score −loss, members against non-members: the probability that a
/// random member scores above a random non-member, ties counting one half (the Mann–Whitney U statistic over n·m).
/// 0.5: the model does not tell its training rows from unseen ones; 1: it separates them perfectly.
/// </summary>
public static class MembershipInference
{
    /// <summary>AUC of <paramref name="memberScores"/> against <paramref name="nonMemberScores"/> (higher = more
    /// member-like), from mid-ranks of the pooled scores in O((n+m) log(n+m)).</summary>
    public static double Auc(IReadOnlyList<double> memberScores, IReadOnlyList<double> nonMemberScores)
    {
        ArgumentNullException.ThrowIfNull(memberScores);
        ArgumentNullException.ThrowIfNull(nonMemberScores);
        int n = memberScores.Count, m = nonMemberScores.Count;
        if (n == 0 || m == 0) throw new ArgumentException("membership AUC: both sets need at least one score");
        var pooled = new (double Score, bool Member)[n + m];
        for (int i = 0; i < n; i++) pooled[i] = (memberScores[i], true);
        for (int j = 0; j < m; j++) pooled[n + j] = (nonMemberScores[j], false);
        if (pooled.Any(p => double.IsNaN(p.Score))) throw new ArgumentException("membership AUC: a score is NaN");
        Array.Sort(pooled, (a, b) => a.Score.CompareTo(b.Score));
        double memberRankSum = 0;
        for (int i = 0; i < pooled.Length;)
        {
            int j = i;
            while (j + 1 < pooled.Length && pooled[j + 1].Score == pooled[i].Score) j++;
            double midRank = 0.5 * (i + j) + 1; // 1-based mid-rank of the tie group i..j
            for (int k = i; k <= j; k++) if (pooled[k].Member) memberRankSum += midRank;
            i = j + 1;
        }
        double u = memberRankSum - n * (n + 1) / 2.0;
        return u / ((double)n * m);
    }

    /// <summary>AUC of the attack that scores each row by its negated loss.</summary>
    public static double AucFromLosses(IReadOnlyList<double> memberLosses, IReadOnlyList<double> nonMemberLosses)
    {
        ArgumentNullException.ThrowIfNull(memberLosses);
        ArgumentNullException.ThrowIfNull(nonMemberLosses);
        return Auc(memberLosses.Select(l => -l).ToList(), nonMemberLosses.Select(l => -l).ToList());
    }
}
