using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>
/// Cosine annealing (Loshchilov and Hutter 2017, SGDR without restarts), as torch.optim.lr_scheduler.CosineAnnealingLR:
/// ηₜ = η_min + (η_base − η_min)·(1 + cos(π·t/T_max))/2, computed recursively from the current rate as PyTorch does.
/// </summary>
public sealed class CosineAnnealingLR : LRScheduler
{
    private readonly int _tMax;
    private readonly double _etaMin;

    /// <summary>Anneals from each group's initial rate to <paramref name="etaMin"/> over <paramref name="tMax"/> epochs (and back, periodically).</summary>
    public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin = 0, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        if (tMax <= 0) Guard.ThrowArg(nameof(CosineAnnealingLR), nameof(tMax), $"T_max must be positive, got {tMax}.");
        _tMax = tMax;
        _etaMin = etaMin;
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        int t = LastEpoch;
        var lrs = GroupLrs();
        if (t == 0) return lrs;
        if (StepCount == 1 && t > 0) // resumed at a later epoch: restart from the closed form
            return BaseLrs.Select(b => _etaMin + (b - _etaMin) * (1 + Math.Cos(t * Math.PI / _tMax)) / 2).ToArray();
        if ((t - 1 - _tMax) % (2 * _tMax) == 0)
            return lrs.Select((lr, i) => lr + (BaseLrs[i] - _etaMin) * (1 - Math.Cos(Math.PI / _tMax)) / 2).ToArray();
        return lrs.Select(lr => (1 + Math.Cos(Math.PI * t / _tMax)) / (1 + Math.Cos(Math.PI * (t - 1) / _tMax)) * (lr - _etaMin) + _etaMin).ToArray();
    }

    /// <inheritdoc />
    protected override double[]? ClosedFormLr() =>
        BaseLrs.Select(b => _etaMin + (b - _etaMin) * (1 + Math.Cos(Math.PI * LastEpoch / _tMax)) / 2).ToArray();
}

/// <summary>
/// Cosine annealing with warm restarts (SGDR, Loshchilov and Hutter 2017), as
/// torch.optim.lr_scheduler.CosineAnnealingWarmRestarts: the cosine restarts every T_i epochs, T_i
/// growing by <c>tMult</c> after each restart. <see cref="Step(double)"/> accepts fractional epochs.
/// </summary>
public sealed class CosineAnnealingWarmRestarts : LRScheduler
{
    private readonly int _t0, _tMult;
    private readonly double _etaMin;
    private double _tCur;
    private int _tI;

    /// <summary>First period <paramref name="t0"/> epochs, each next one <paramref name="tMult"/> times longer.</summary>
    public CosineAnnealingWarmRestarts(Optimizer optimizer, int t0, int tMult = 1, double etaMin = 0, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        if (t0 <= 0) Guard.ThrowArg(nameof(CosineAnnealingWarmRestarts), nameof(t0), $"T_0 must be a positive integer, got {t0}.");
        if (tMult < 1) Guard.ThrowArg(nameof(CosineAnnealingWarmRestarts), nameof(tMult), $"T_mult must be an integer >= 1, got {tMult}.");
        (_t0, _tI, _tMult, _etaMin, _tCur) = (t0, t0, tMult, etaMin, lastEpoch);
        InitialStep();
    }

    /// <summary>Epochs since the last restart (fractional when stepped with fractional epochs).</summary>
    public double TCur => _tCur;

    /// <inheritdoc />
    protected override double[] GetLr() =>
        BaseLrs.Select(b => _etaMin + (b - _etaMin) * (1 + Math.Cos(Math.PI * _tCur / _tI)) / 2).ToArray();

    /// <inheritdoc />
    public override void Step()
    {
        if (LastEpoch < 0) { Step(0); return; }
        _tCur += 1;
        if (_tCur >= _tI)
        {
            _tCur -= _tI;
            _tI *= _tMult;
        }
        LastEpoch++;
        Apply(GetLr());
    }

    /// <summary>Jumps to a (possibly fractional) epoch, e.g. epoch + batch / batchesPerEpoch.</summary>
    public void Step(double epoch)
    {
        if (!(epoch >= 0)) Guard.ThrowArg(nameof(CosineAnnealingWarmRestarts), nameof(epoch), $"expected a non-negative epoch, got {epoch}.");
        if (epoch >= _t0)
        {
            if (_tMult == 1) _tCur = epoch % _t0;
            else
            {
                // Restart n is where the geometric series of periods passes the epoch: T_0·(m^n − 1)/(m − 1) <= epoch.
                int n = (int)Math.Log(epoch / _t0 * (_tMult - 1) + 1, _tMult);
                _tCur = epoch - _t0 * (Math.Pow(_tMult, n) - 1) / (_tMult - 1);
                _tI = _t0 * (int)Math.Pow(_tMult, n);
            }
        }
        else
        {
            _tI = _t0;
            _tCur = epoch;
        }
        LastEpoch = (int)Math.Floor(epoch);
        Apply(GetLr());
    }

    internal override void StepAt(int epoch) => Step((double)epoch);

    /// <inheritdoc />
    protected override void WriteState(JsonObject state)
    {
        state["T_cur"] = _tCur;
        state["T_i"] = _tI;
    }

    /// <inheritdoc />
    protected override void ReadState(JsonObject state)
    {
        _tCur = StateJson.Double(state["T_cur"], "T_cur");
        _tI = StateJson.Int(state["T_i"], "T_i");
        if (_tI <= 0) throw new InvalidDataException($"{nameof(CosineAnnealingWarmRestarts)}.LoadStateDict: T_i must be positive, got {_tI}.");
    }
}
