namespace GradFlow;

/// <summary>
/// A seedable random generator (xoshiro256** seeded through SplitMix64), so the same seed gives the
/// same tensors bit for bit on every machine. Its state can be saved and restored for exact resume.
/// Normal samples use the Box-Muller transform, caching the second value of each pair.
/// A generator you create is for one thread at a time; <see cref="Default"/> is shared and locks each draw.
/// </summary>
public sealed class Generator
{
    // Only the shared default has one: threads drawing from it at once get distinct numbers, and a
    // generator of one's own pays nothing for that.
    private readonly Lock? _gate;
    private ulong _s0, _s1, _s2, _s3;
    private double _spareNormal;
    private bool _hasSpare;

    /// <summary>Creates a generator from a seed.</summary>
    public Generator(ulong seed = 0x5EED) => ManualSeed(seed);

    private Generator(ulong seed, Lock gate) : this(seed) => _gate = gate;

    /// <summary>
    /// The generator used when an op is given none. Seed it with <c>Generator.Default.ManualSeed(42)</c>.
    /// Shared by all threads and thread-safe: each draw takes a lock, so concurrent draws never repeat or
    /// tear a number (their interleaving, and so which thread gets which number, is up to the scheduler; for
    /// reproducible results per thread, give each thread its own generator).
    /// </summary>
    public static Generator Default => t_default ?? s_default;

    private static readonly Generator s_default = new(0x5EED, new Lock());
    [ThreadStatic] private static Generator? t_default;

    /// <summary>
    /// Until the result is disposed, <see cref="Default"/> on this thread is <paramref name="generator"/>: code that
    /// draws from the default (layers built without a generator, Dropout, shuffling) gets a stream no other thread
    /// advances, as tests running side by side need. Scopes nest; dispose on the thread that made it.
    /// </summary>
    public static DefaultScope UseAsDefault(Generator generator)
    {
        Guard.NotNull(generator, nameof(UseAsDefault), nameof(generator));
        var previous = t_default;
        t_default = generator;
        return new DefaultScope(previous);
    }

    /// <summary>Ends a <see cref="UseAsDefault"/>: the thread's previous default comes back.</summary>
    public readonly struct DefaultScope : IDisposable
    {
        private readonly Generator? _previous;

        internal DefaultScope(Generator? previous) => _previous = previous;

        /// <summary>Restores the previous default.</summary>
        public void Dispose() => t_default = _previous;
    }

    /// <summary>Resets the state from a seed.</summary>
    public Generator ManualSeed(ulong seed)
    {
        if (_gate is not null)
        {
            lock (_gate) return Seed(seed);
        }
        return Seed(seed);
    }

    private Generator Seed(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
        _hasSpare = false;
        _spareNormal = 0;
        return this;
    }

    /// <summary>The full state, for checkpoints: four words, the cached normal's bits and whether it is valid.</summary>
    public ulong[] GetState()
    {
        if (_gate is null) return State();
        lock (_gate) return State();
    }

    private ulong[] State() => [_s0, _s1, _s2, _s3, (ulong)BitConverter.DoubleToInt64Bits(_spareNormal), _hasSpare ? 1UL : 0UL];

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    public void SetState(ulong[] state)
    {
        Guard.NotNull(state, nameof(SetState), nameof(state));
        if (state.Length != 6 || (state[0] | state[1] | state[2] | state[3]) == 0 || state[5] > 1)
            Guard.ThrowArg(nameof(SetState), nameof(state), $"expected 6 words with a non-zero xoshiro state, got {state.Length}.");
        if (_gate is null) Restore(state);
        else lock (_gate) Restore(state);
    }

    private void Restore(ulong[] state)
    {
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spareNormal = BitConverter.Int64BitsToDouble((long)state[4]);
        _hasSpare = state[5] == 1;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        if (_gate is null) return Step();
        lock (_gate) return Step();
    }

    private ulong Step()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, n), without modulo bias (Lemire's method).</summary>
    public long NextInt64(long n)
    {
        if (n <= 0) Guard.ThrowArg(nameof(NextInt64), nameof(n), $"upper bound must be positive, got {n}.");
        ulong un = (ulong)n;
        ulong threshold = (0UL - un) % un;
        while (true)
        {
            ulong r = NextUInt64();
            ulong hi = Math.BigMul(r, un, out ulong lo);
            if (lo >= threshold) return (long)hi;
        }
    }

    /// <summary>A standard normal sample.</summary>
    public double NextNormal()
    {
        if (_gate is null) return Normal();
        lock (_gate) return Normal(); // the lock is re-entered by the uniform draws inside
    }

    private double Normal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spareNormal;
        }
        double u1 = 1.0 - NextDouble(); // (0, 1]: log is finite
        double u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        (double s, double c) = Math.SinCos(2.0 * Math.PI * u2);
        _spareNormal = r * s;
        _hasSpare = true;
        return r * c;
    }

    /// <summary>A random permutation of 0..n-1 (Fisher-Yates).</summary>
    public int[] Permutation(int n)
    {
        if (n < 0) Guard.ThrowArg(nameof(Permutation), nameof(n), $"n must be non-negative, got {n}.");
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)NextInt64(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
