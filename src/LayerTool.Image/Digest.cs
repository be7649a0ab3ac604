using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace LayerTool.Image;

/// <summary>
/// A content digest <c>algorithm:hex</c>, as in the OCI image spec
/// (https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests). <c>sha256</c> is what
/// images use; <c>sha384</c> and <c>sha512</c> parse and validate too. The hex part is always lowercase.
/// </summary>
public readonly record struct Digest
{
    /// <summary>The algorithm every digest this code computes uses.</summary>
    public const string Sha256 = "sha256";

    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    /// <summary>The algorithm, e.g. <c>sha256</c>.</summary>
    public string Algorithm { get; }

    /// <summary>The encoded part, lowercase hex.</summary>
    public string Hex { get; }

    public override string ToString() => Algorithm is null ? string.Empty : $"{Algorithm}:{Hex}";

    /// <summary>Parses <c>sha256:&lt;64 hex&gt;</c> (or sha384/sha512); throws <see cref="ImageFormatException"/>.</summary>
    public static Digest Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var digest, out var error) ? digest : throw new ImageFormatException(error);
    }

    /// <summary>Parses a digest; false for anything invalid.</summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest) => TryParse(value, out digest, out _);

    /// <summary>
    /// Parses a digest with the rules of opencontainers/go-digest: a known algorithm and lowercase hex of
    /// exactly the algorithm's length. On failure <paramref name="error"/> says why.
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest, [NotNullWhen(false)] out string? error)
    {
        digest = default;
        if (string.IsNullOrEmpty(value))
        {
            error = "invalid checksum digest format: empty";
            return false;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1)
        {
            error = $"invalid checksum digest format: '{value}'";
            return false;
        }

        var algorithm = value[..colon];
        var hex = value[(colon + 1)..];
        var hexLength = algorithm switch
        {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => -1,
        };
        if (hexLength < 0)
        {
            error = $"unsupported digest algorithm: '{value}'";
            return false;
        }

        if (hex.Length != hexLength)
        {
            error = $"invalid checksum digest length: '{value}'";
            return false;
        }

        foreach (var c in hex)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                error = $"invalid checksum digest format: '{value}'";
                return false;
            }
        }

        digest = new Digest(algorithm, hex);
        error = null;
        return true;
    }

    /// <summary>The digest of a SHA-256 hash value.</summary>
    public static Digest FromSha256Hash(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != 32)
        {
            throw new ArgumentException("A SHA-256 hash is 32 bytes.", nameof(hash));
        }

        return new Digest(Sha256, Convert.ToHexStringLower(hash));
    }

    /// <summary>Whether <paramref name="value"/> is a sha256 hex string alone (64 lowercase hex digits).</summary>
    public static bool IsSha256Hex(ReadOnlySpan<char> value)
    {
        if (value.Length != 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The sha256 digest of some bytes.</summary>
    public static Digest Compute(ReadOnlySpan<byte> data) => FromSha256Hash(SHA256.HashData(data));

    /// <summary>The sha256 digest of a stream, read to its end.</summary>
    public static Digest Compute(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return FromSha256Hash(SHA256.HashData(stream));
    }

    /// <summary>The sha256 digest of a stream, read to its end.</summary>
    public static async Task<Digest> ComputeAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
        return FromSha256Hash(hash);
    }

    /// <summary>Creates the incremental hash that matches this digest's algorithm.</summary>
    internal IncrementalHash CreateHash() => Algorithm switch
    {
        "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        "sha384" => IncrementalHash.CreateHash(HashAlgorithmName.SHA384),
        "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => throw new InvalidOperationException("An empty digest cannot verify anything."),
    };

    /// <summary>Whether <paramref name="hash"/> (the finished value of <see cref="CreateHash"/>) is this digest.</summary>
    internal bool Matches(ReadOnlySpan<byte> hash)
    {
        Span<char> hex = stackalloc char[hash.Length * 2];
        Convert.TryToHexStringLower(hash, hex, out _);
        return hex.SequenceEqual(Hex);
    }
}
