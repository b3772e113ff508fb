namespace GradFlow.Tests.Kernels;

/// <summary>Random Conv2d operands and a direct seven-loop reference for forward and both backwards.</summary>
internal sealed class ConvCase
{
    public ConvCase(int[] p, int seed)
    {
        P = p;
        (N, C, H, W, OutC, KH, KW) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        (SH, SW, PH, PW, DH, DW, G) = (p[7], p[8], p[9], p[10], p[11], p[12], p[13]);
        OH = ((H + (2 * PH) - (DH * (KH - 1)) - 1) / SH) + 1;
        OW = ((W + (2 * PW) - (DW * (KW - 1)) - 1) / SW) + 1;
        var random = new Random(seed);
        X = Random(random, N * C * H * W);
        Wt = Random(random, OutC * (C / G) * KH * KW);
        Bias = Random(random, OutC);
        Dy = Random(random, N * OutC * OH * OW);
    }

    public int[] P { get; }

    public int N { get; }
    public int C { get; }
    public int H { get; }
    public int W { get; }
    public int OutC { get; }
    public int KH { get; }
    public int KW { get; }
    public int SH { get; }
    public int SW { get; }
    public int PH { get; }
    public int PW { get; }
    public int DH { get; }
    public int DW { get; }
    public int G { get; }
    public int OH { get; }
    public int OW { get; }

    public double[] X { get; }
    public double[] Wt { get; }
    public double[] Bias { get; }
    public double[] Dy { get; }

    public (double[] Y, double[] Dx, double[] Dw, double[] Db) Reference()
    {
        var y = new double[N * OutC * OH * OW];
        var dx = new double[X.Length];
        var dw = new double[Wt.Length];
        var db = new double[OutC];
        int cg = C / G, og = OutC / G;
        for (int b = 0; b < N; b++)
        {
            for (int oc = 0; oc < OutC; oc++)
            {
                for (int oy = 0; oy < OH; oy++)
                {
                    for (int ox = 0; ox < OW; ox++)
                    {
                        int yi = (((b * OutC) + oc) * OH * OW) + (oy * OW) + ox;
                        y[yi] = Bias[oc];
                        db[oc] += Dy[yi];
                        for (int ci = 0; ci < cg; ci++)
                        {
                            int cin = ((oc / og) * cg) + ci;
                            for (int ki = 0; ki < KH; ki++)
                            {
                                int iy = (oy * SH) - PH + (ki * DH);
                                for (int kj = 0; kj < KW; kj++)
                                {
                                    int ix = (ox * SW) - PW + (kj * DW);
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    {
                                        continue;
                                    }

                                    int xi = (((b * C) + cin) * H * W) + (iy * W) + ix;
                                    int wi = (((oc * cg) + ci) * KH * KW) + (ki * KW) + kj;
                                    y[yi] += X[xi] * Wt[wi];
                                    dx[xi] += Dy[yi] * Wt[wi];
                                    dw[wi] += Dy[yi] * X[xi];
                                }
                            }
                        }
                    }
                }
            }
        }

        return (y, dx, dw, db);
    }

    private static double[] Random(Random random, int n)
    {
        var v = new double[n];
        for (int i = 0; i < n; i++)
        {
            v[i] = (random.NextDouble() * 2) - 1;
        }

        return v;
    }
}
