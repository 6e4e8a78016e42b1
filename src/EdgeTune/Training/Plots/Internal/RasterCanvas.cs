namespace EdgeTune.Training.Plots.Internal;

/// <summary>An RGB pixel buffer with the few drawing primitives a line plot needs: filled rectangles, thick
/// clipped lines, dots and bitmap-font text (horizontal, or rotated a quarter turn for y labels).</summary>
internal sealed class RasterCanvas
{
    private int _clipX0, _clipY0, _clipX1, _clipY1; // inclusive-exclusive

    public RasterCanvas(int width, int height, PlotColor background)
    {
        if (width < 1 || height < 1 || (long)width * height > 64L << 20)
            throw new ArgumentOutOfRangeException(nameof(width), $"RasterCanvas: {width}×{height} must be 1..64 Mpixel");
        Width = width;
        Height = height;
        Pixels = new byte[width * height * 3];
        ResetClip();
        FillRect(0, 0, width, height, background);
    }

    public int Width { get; }
    public int Height { get; }
    /// <summary>Rows top to bottom, R G B per pixel.</summary>
    public byte[] Pixels { get; }

    public void SetClip(int x, int y, int width, int height)
    {
        _clipX0 = Math.Max(0, x);
        _clipY0 = Math.Max(0, y);
        _clipX1 = Math.Min(Width, x + width);
        _clipY1 = Math.Min(Height, y + height);
    }

    public void ResetClip() => SetClip(0, 0, Width, Height);

    public PlotColor Get(int x, int y)
    {
        int i = (y * Width + x) * 3;
        return new PlotColor(Pixels[i], Pixels[i + 1], Pixels[i + 2]);
    }

    public void Set(int x, int y, PlotColor c)
    {
        if (x < _clipX0 || x >= _clipX1 || y < _clipY0 || y >= _clipY1) return;
        int i = (y * Width + x) * 3;
        Pixels[i] = c.R;
        Pixels[i + 1] = c.G;
        Pixels[i + 2] = c.B;
    }

    public void FillRect(int x, int y, int width, int height, PlotColor c)
    {
        int x0 = Math.Max(x, _clipX0), x1 = Math.Min(x + width, _clipX1);
        int y0 = Math.Max(y, _clipY0), y1 = Math.Min(y + height, _clipY1);
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++) Set(xx, yy, c);
    }

    /// <summary>Outline of a rectangle, one pixel wide.</summary>
    public void StrokeRect(int x, int y, int width, int height, PlotColor c)
    {
        FillRect(x, y, width, 1, c);
        FillRect(x, y + height - 1, width, 1, c);
        FillRect(x, y, 1, height, c);
        FillRect(x + width - 1, y, 1, height, c);
    }

    /// <summary>A line of <paramref name="thickness"/> pixels from (x0, y0) to (x1, y1), clipped (Liang–Barsky)
    /// to the clip rectangle before it is walked, so far-away points cost nothing.</summary>
    public void Line(double x0, double y0, double x1, double y1, PlotColor c, int thickness = 1)
    {
        if (!double.IsFinite(x0) || !double.IsFinite(y0) || !double.IsFinite(x1) || !double.IsFinite(y1)) return;
        double pad = thickness;
        double dx = x1 - x0, dy = y1 - y0, t0 = 0, t1 = 1;
        if (!Clip(-dx, x0 - (_clipX0 - pad), ref t0, ref t1) || !Clip(dx, _clipX1 + pad - x0, ref t0, ref t1) ||
            !Clip(-dy, y0 - (_clipY0 - pad), ref t0, ref t1) || !Clip(dy, _clipY1 + pad - y0, ref t0, ref t1)) return;
        double ax = x0 + t0 * dx, ay = y0 + t0 * dy, bx = x0 + t1 * dx, by = y0 + t1 * dy;
        int steps = (int)Math.Ceiling(Math.Max(Math.Abs(bx - ax), Math.Abs(by - ay)));
        for (int i = 0; i <= steps; i++)
        {
            double t = steps == 0 ? 0 : (double)i / steps;
            Dot(ax + t * (bx - ax), ay + t * (by - ay), thickness, c);
        }
    }

    private static bool Clip(double p, double q, ref double t0, ref double t1)
    {
        if (p == 0) return q >= 0;
        double r = q / p;
        if (p < 0) { if (r > t1) return false; if (r > t0) t0 = r; }
        else { if (r < t0) return false; if (r < t1) t1 = r; }
        return true;
    }

    /// <summary>A filled square of side <paramref name="size"/> centred on (x, y).</summary>
    public void Dot(double x, double y, int size, PlotColor c)
    {
        int left = (int)Math.Round(x - (size - 1) / 2.0), top = (int)Math.Round(y - (size - 1) / 2.0);
        FillRect(left, top, size, size, c);
    }

    /// <summary>Text with its top-left corner at (x, y), each font pixel drawn as a <paramref name="scale"/>² block.</summary>
    public void Text(int x, int y, string text, PlotColor c, int scale = 1)
    {
        for (int i = 0; i < text.Length; i++)
        {
            var g = PixelFont.Glyph(text[i]);
            int gx = x + i * PixelFont.Advance * scale;
            for (int r = 0; r < PixelFont.GlyphHeight; r++)
                for (int k = 0; k < PixelFont.GlyphWidth; k++)
                    if ((g[r] >> (PixelFont.GlyphWidth - 1 - k) & 1) != 0)
                        FillRect(gx + k * scale, y + r * scale, scale, scale, c);
        }
    }

    /// <summary>Text turned a quarter turn anticlockwise (reading bottom to top); (x, y) is the bottom-left
    /// corner of the first character as seen on the page.</summary>
    public void TextUp(int x, int y, string text, PlotColor c, int scale = 1)
    {
        for (int i = 0; i < text.Length; i++)
        {
            var g = PixelFont.Glyph(text[i]);
            int gy = y - i * PixelFont.Advance * scale;
            for (int r = 0; r < PixelFont.GlyphHeight; r++)
                for (int k = 0; k < PixelFont.GlyphWidth; k++)
                    if ((g[r] >> (PixelFont.GlyphWidth - 1 - k) & 1) != 0)
                        FillRect(x + r * scale, gy - (k + 1) * scale, scale, scale, c);
        }
    }

    public static int TextWidth(string text, int scale) => PixelFont.Width(text) * scale;
}
