using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Autograd.Internal;
using EdgeTune.Compression.Distillation;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation
{
    /// <summary>
    /// The student's LM head fused with the distillation loss, to a scalar: the mean over counted rows
    /// (target ≠ <see cref="CrossEntropy.IgnoreIndex"/>) of α·τ²·KL + (1 − α)·CE, with x: (..., C) seen
    /// as rows [N, C], W: [V, C], N targets and the teacher's view of the same N positions
    /// (<see cref="TeacherTargets"/>: full logits or top-k). The F32 path makes the student logits a
    /// block of rows at a time (<see cref="DistillationLoss"/>); W may be a frozen F16/BF16 tensor or a
    /// trainable F32 one. F64 runs <see cref="DistillationLossReference"/> (gradient checks). Backward
    /// recomputes the logits and accumulates dx and, when W requires a gradient, dW. NaN or Inf logits or
    /// loss raise <see cref="NonFiniteException"/>.
    /// </summary>
    public sealed class DistillationLossOp : TapeOp
    {
        private readonly Variable _x, _w;
        private readonly int[] _targets;
        private readonly TeacherTargets _teacher;
        private readonly DistillationSettings _settings;
        private readonly int _rowChunk;
        private Variable _loss = null!;
        private int _rows, _channels, _vocab, _count;

        /// <param name="targets">[N] target ids, copied.</param>
        public DistillationLossOp(Variable x, Variable w, ReadOnlySpan<int> targets, TeacherTargets teacher, DistillationSettings settings,
            int rowChunkElements = DistillationLoss.DefaultRowChunkElements) : base("DistillationLoss", x, w)
        {
            ArgumentNullException.ThrowIfNull(teacher);
            settings.Validate();
            _x = x;
            _w = w;
            _targets = targets.ToArray();
            _teacher = teacher;
            _settings = settings;
            _rowChunk = rowChunkElements;
        }

        protected internal override void Forward(Tape tape)
        {
            (_rows, _channels, _vocab, bool f64) = OpChecks.LmHead(Name, _x, _w, _targets.Length);
            _loss = NewOutput(tape, _x.DType, [], "distillation_loss");
            double sum;
            try
            {
                if (f64)
                {
                    (sum, _count) = DistillationLossReference.LmHeadForward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _targets,
                        _teacher, _settings, _rows, _channels, _vocab);
                }
                else
                {
                    var x = _x.Value.ReadOnlySpan<float>();
                    (sum, _count) = _w.DType switch
                    {
                        DType.F32 => DistillationLoss.LmHeadForward(x, _w.Value.ReadOnlySpan<float>(), _targets, _teacher, _settings, _rows, _channels, _vocab, _rowChunk),
                        DType.F16 => DistillationLoss.LmHeadForward(x, _w.Value.ReadOnlySpan<Half>(), _targets, _teacher, _settings, _rows, _channels, _vocab, _rowChunk),
                        _ => DistillationLoss.LmHeadForward(x, _w.Value.ReadOnlySpan<ushort>(), _targets, _teacher, _settings, _rows, _channels, _vocab, _rowChunk),
                    };
                }
            }
            catch (ArithmeticException e) when (e is not NonFiniteException)
            {
                throw new NonFiniteException(Name, _x.Name, double.NaN);
            }
            double mean = _count == 0 ? 0 : sum / _count;
            if (f64) _loss.Value.Span<double>()[0] = mean;
            else _loss.Value.Span<float>()[0] = (float)mean;
            if (!double.IsFinite(mean)) throw new NonFiniteException(Name, _loss.Name, mean);
        }

        protected internal override void Backward()
        {
            Tensor? dl = _loss.Grad, dx = GradOf(_x), dw = GradOf(_w);
            if (dl is null || (dx is null && dw is null) || _count == 0) return;
            int n = _rows * _channels;
            if (_x.DType == DType.F64)
            {
                double scale = dl.ReadOnlySpan<double>()[0] / _count;
                DistillationLossReference.LmHeadBackward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _targets, _teacher, _settings,
                    dx is null ? new double[n] : dx.Span<double>(), dw is null ? default : dw.Span<double>(), _rows, _channels, _vocab, scale);
                return;
            }
            float s = dl.ReadOnlySpan<float>()[0] / _count;
            var x = _x.Value.ReadOnlySpan<float>();
            Span<float> gx = dx is null ? new float[n] : dx.Span<float>(), gw = dw is null ? default : dw.Span<float>();
            switch (_w.DType)
            {
                case DType.F32: DistillationLoss.LmHeadBackward(x, _w.Value.ReadOnlySpan<float>(), _targets, _teacher, _settings, gx, gw, _rows, _channels, _vocab, s, _rowChunk); break;
                case DType.F16: DistillationLoss.LmHeadBackward(x, _w.Value.ReadOnlySpan<Half>(), _targets, _teacher, _settings, gx, gw, _rows, _channels, _vocab, s, _rowChunk); break;
                default: DistillationLoss.LmHeadBackward(x, _w.Value.ReadOnlySpan<ushort>(), _targets, _teacher, _settings, gx, gw, _rows, _channels, _vocab, s, _rowChunk); break;
            }
        }
    }
}

namespace EdgeTune.Autograd
{
    public static partial class TapeOps
    {
        /// <summary>Mean distillation loss of the student logits x·Wᵀ (made a block of rows at a time) against
        /// the teacher and the targets [N]; W: [V, C]. See <see cref="DistillationLossOp"/>.</summary>
        public static Variable DistillationLoss(this Tape tape, Variable x, Variable w, int[] targets, TeacherTargets teacher,
            DistillationSettings settings, int rowChunkElements = Compression.Distillation.DistillationLoss.DefaultRowChunkElements) =>
            tape.Apply(new DistillationLossOp(x, w, targets, teacher, settings, rowChunkElements));
    }
}
