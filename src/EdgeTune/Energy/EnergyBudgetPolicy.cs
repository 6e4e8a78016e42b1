using System.Globalization;

namespace EdgeTune.Energy;

/// <summary><c>--energy-budget 5Wh</c>: stop cleanly (with a checkpoint) once the run has used its budget.
/// With <c>stopBeforeExceeding</c>, it stops one step earlier when the next step, costing
/// about as much as the last one, would go over.</summary>
public sealed class EnergyBudgetPolicy : IPowerPolicy
{
    /// <param name="budgetJoules">The budget in joules (see <see cref="EnergyUnits.ParseEnergy"/>).</param>
    /// <param name="stopBeforeExceeding">Stop when the next step is predicted to cross the budget.</param>
    public EnergyBudgetPolicy(double budgetJoules, bool stopBeforeExceeding = false)
    {
        if (!(budgetJoules > 0) || double.IsInfinity(budgetJoules)) throw new ArgumentOutOfRangeException(nameof(budgetJoules), budgetJoules, "energy budget must be a finite number of joules > 0");
        BudgetJoules = budgetJoules;
        StopBeforeExceeding = stopBeforeExceeding;
    }

    public double BudgetJoules { get; }

    public bool StopBeforeExceeding { get; }

    public string Name => string.Create(CultureInfo.InvariantCulture, $"energy-budget {EnergyUnits.ToWattHours(BudgetJoules):0.###} Wh");

    public PolicyDecision Evaluate(PolicyContext context)
    {
        double spent = context.JoulesSpent;
        double next = StopBeforeExceeding ? context.LastStepJoules ?? 0 : 0;
        if (spent >= BudgetJoules || spent + next > BudgetJoules)
        {
            return new PolicyDecision.Stop(string.Create(CultureInfo.InvariantCulture,
                $"energy budget {EnergyUnits.ToWattHours(BudgetJoules):0.###} Wh {(spent >= BudgetJoules ? "spent" : "would be exceeded by the next step")} " +
                $"({EnergyUnits.ToWattHours(spent):0.###} Wh used{(context.EnergyIsEstimate ? ", ESTIMATED" : "")})"));
        }
        return PolicyDecision.Go;
    }
}
