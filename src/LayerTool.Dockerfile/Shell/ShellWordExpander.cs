using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.Dockerfile.Shell;

/// <summary>What <see cref="ShellWordExpander.Expand"/> produced.</summary>
/// <param name="Value">The expanded word, quotes removed, white space kept.</param>
/// <param name="Words">The same text split into words the way Docker splits (quoted text never splits).</param>
/// <param name="Used">Variables the word referred to that were set.</param>
/// <param name="Unset">Variables the word referred to that were not set.</param>
public sealed record ExpansionResult(string Value, IReadOnlyList<string> Words, IReadOnlySet<string> Used, IReadOnlySet<string> Unset);

/// <summary>
/// Docker's word expansion: quote removal (<c>'...'</c> literal, <c>"..."</c> with <c>$</c> and escapes), the
/// escape token, and <c>$V</c>, <c>${V}</c>, <c>${V:-w}</c>, <c>${V-w}</c>, <c>${V:+w}</c>, <c>${V+w}</c>,
/// <c>${V:?m}</c>, <c>${V?m}</c>, <c>${V#p}</c>, <c>${V##p}</c>, <c>${V%p}</c>, <c>${V%%p}</c>, <c>${V/p/r}</c>,
/// <c>${V//p/r}</c>. Variables come only from the <see cref="IVariableLookup"/> passed in. Thread-safe.
/// </summary>
public sealed class ShellWordExpander
{
    /// <summary>
    /// How deeply <c>${...}</c> may nest inside one word. The expander recurses once per level; a hostile word
    /// (thousands of <c>${a:-</c>) would otherwise overflow the stack and kill the process.
    /// </summary>
    public const int MaxNesting = 1000;

    public ShellWordExpander(char escapeToken = '\\')
    {
        if (escapeToken is not ('\\' or '`'))
            throw new ArgumentOutOfRangeException(nameof(escapeToken), escapeToken, "the escape token is \\ or `");
        EscapeToken = escapeToken;
    }

    public char EscapeToken { get; }

    /// <summary>Leave references to unset variables as written instead of expanding them to "".</summary>
    public bool KeepUnset { get; init; }

    /// <summary>
    /// When false, quotes are ordinary characters (used for heredoc bodies, where only <c>$</c> and the
    /// escape token are special). Default true.
    /// </summary>
    public bool ProcessQuotes { get; init; } = true;

    /// <summary>Expands <paramref name="word"/> as one word (white space kept, nothing split).</summary>
    public string ExpandWord(string word, IVariableLookup lookup) => Expand(word, lookup).Value;

    /// <summary>Expands <paramref name="word"/> then splits it into words at unquoted white space.</summary>
    public IReadOnlyList<string> ExpandWords(string word, IVariableLookup lookup) => Expand(word, lookup).Words;

    /// <summary>Expands <paramref name="word"/>; throws <see cref="ShellExpansionException"/> when it is malformed.</summary>
    public ExpansionResult Expand(string word, IVariableLookup lookup)
    {
        ArgumentNullException.ThrowIfNull(word);
        ArgumentNullException.ThrowIfNull(lookup);
        var run = new Run(this, word, lookup);
        try
        {
            var (value, words) = run.ProcessUntil(-1, rawEscapes: false);
            return new ExpansionResult(value, words, run.Used, run.Unset);
        }
        catch (ExpandError e)
        {
            throw new ShellExpansionException(word, e.Message);
        }
    }

    private sealed class ExpandError(string message) : Exception(message);

    private sealed class WordSplitter
    {
        private readonly StringBuilder _buf = new();
        private readonly List<string> _words = [];
        private bool _inWord;

        public void AddChar(char ch)
        {
            if (char.IsWhiteSpace(ch))
            {
                if (_inWord && _buf.Length != 0)
                {
                    _words.Add(_buf.ToString());
                    _buf.Clear();
                    _inWord = false;
                }
            }
            else
            {
                AddRaw(ch);
            }
        }

        public void AddRaw(char ch)
        {
            _buf.Append(ch);
            _inWord = true;
        }

        public void AddString(string s)
        {
            foreach (var ch in s)
                AddChar(ch);
        }

        public void AddRawString(string s)
        {
            _buf.Append(s);
            _inWord = true;
        }

        public List<string> Finish()
        {
            if (_buf.Length > 0)
                _words.Add(_buf.ToString());
            _buf.Clear();
            return _words;
        }
    }

    private sealed class Run(ShellWordExpander owner, string text, IVariableLookup lookup)
    {
        private const int Eof = -1;
        private int _pos;
        private int _depth;

        public HashSet<string> Used { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Unset { get; } = new(StringComparer.Ordinal);

        private int Peek() => _pos < text.Length ? text[_pos] : Eof;

        private int Next() => _pos < text.Length ? text[_pos++] : Eof;

        private char Esc => owner.EscapeToken;

        public (string Value, List<string> Words) ProcessUntil(int stop, bool rawEscapes)
        {
            var result = new StringBuilder();
            var words = new WordSplitter();
            while (Peek() != Eof)
            {
                var ch = Peek();
                if (stop != Eof && ch == stop)
                {
                    Next();
                    return (result.ToString(), words.Finish());
                }

                switch (ch)
                {
                    case '$':
                        {
                            var v = Dollar();
                            result.Append(v);
                            words.AddString(v);
                            continue;
                        }

                    case '\'' when owner.ProcessQuotes:
                        {
                            var v = SingleQuoted();
                            result.Append(v);
                            words.AddRawString(v);
                            continue;
                        }

                    case '"' when owner.ProcessQuotes:
                        {
                            var v = DoubleQuoted(rawEscapes);
                            result.Append(v);
                            words.AddRawString(v);
                            continue;
                        }

                    case '<' when _pos + 1 < text.Length && text[_pos + 1] == '<':
                        {
                            var start = _pos;
                            _pos += 2;
                            while (Peek() is ' ' or '\t')
                                _pos++;
                            var v = text[start.._pos];
                            result.Append(v);
                            words.AddRawString(v);
                            continue;
                        }
                }

                Next();
                if (ch == Esc)
                {
                    if (rawEscapes)
                    {
                        words.AddRaw(Esc);
                        result.Append(Esc);
                    }

                    ch = Next();
                    if (ch == Eof)
                        break;
                    words.AddRaw((char)ch);
                }
                else
                {
                    words.AddChar((char)ch);
                }

                result.Append((char)ch);
            }

            if (stop != Eof)
                throw new ExpandError($"unexpected end of statement while looking for matching {(char)stop}");
            return (result.ToString(), words.Finish());
        }

        private string SingleQuoted()
        {
            Next();
            var end = text.IndexOf('\'', _pos);
            if (end < 0)
                throw new ExpandError("unexpected end of statement while looking for matching single-quote");
            var v = text[_pos..end];
            _pos = end + 1;
            return v;
        }

        private string DoubleQuoted(bool rawEscapes)
        {
            Next();
            var sb = new StringBuilder();
            while (true)
            {
                var ch = Peek();
                if (ch == Eof)
                    throw new ExpandError("unexpected end of statement while looking for matching double-quote");
                if (ch == '"')
                {
                    Next();
                    return sb.ToString();
                }

                if (ch == '$')
                {
                    sb.Append(Dollar());
                    continue;
                }

                Next();
                if (ch == Esc)
                {
                    if (rawEscapes)
                        sb.Append(Esc);
                    var after = Peek();
                    if (after == Eof)
                        continue;
                    if (after == '"' || after == '$' || after == Esc)
                        ch = Next();
                }

                sb.Append((char)ch);
            }
        }

        private bool Get(string name, out string value)
        {
            if (lookup.TryGetValue(name, out var v))
            {
                Used.Add(name);
                value = v;
                return true;
            }

            Unset.Add(name);
            value = string.Empty;
            return false;
        }

        private string Name()
        {
            var start = _pos;
            if (Peek() is >= '0' and <= '9')
            {
                while (Peek() is >= '0' and <= '9')
                    Next();
                return text[start.._pos];
            }

            if (Peek() is '@' or '*' or '#' or '?' or '-' or '$' or '!')
            {
                Next();
                return text[start.._pos];
            }

            while (Peek() != Eof && (char.IsLetterOrDigit((char)Peek()) || Peek() == '_'))
                Next();
            return text[start.._pos];
        }

        private (string Word, bool AtEof) Until(int stop, bool raw, string eofMessage)
        {
            try
            {
                return (ProcessUntil(stop, raw).Value, false);
            }
            catch (ExpandError) when (Peek() == Eof)
            {
                throw new ExpandError(eofMessage);
            }
        }

        private string Dollar()
        {
            if (++_depth > MaxNesting)
                throw new ExpandError($"substitutions nested more than {MaxNesting} levels deep");
            try
            {
                return DollarAt();
            }
            finally
            {
                _depth--;
            }
        }

        private string DollarAt()
        {
            Next();
            if (Peek() != '{')
            {
                var simple = Name();
                if (simple.Length == 0)
                    return "$";
                if (!Get(simple, out var v) && owner.KeepUnset)
                    return "$" + simple;
                return v;
            }

            Next();
            switch (Peek())
            {
                case Eof:
                    throw new ExpandError("syntax error: missing '}'");
                case '{' or '}' or ':':
                    throw new ExpandError("syntax error: bad substitution");
            }

            var name = Name();
            var op = Next();
            if (op == Eof)
                throw new ExpandError("syntax error: missing '}'");
            var ops = ((char)op).ToString();
            string value;
            bool set;
            switch (op)
            {
                case '}':
                    set = Get(name, out value);
                    return !set && owner.KeepUnset ? "${" + name + "}" : value;
                case '/':
                    {
                        var all = Peek() == '/';
                        if (all)
                            Next();
                        var (pattern, _) = Until('/', true, "syntax error: missing '/' in ${}");
                        var (replacement, _) = Until('}', true, "syntax error: missing '}'");
                        set = Get(name, out value);
                        if (!set && owner.KeepUnset)
                            return "${" + name + "/" + pattern + "/" + replacement + "}";
                        var re = PatternToRegex(pattern, greedy: true, anchored: false);
                        if (all)
                            return re.Replace(value, replacement.Replace("$", "$$", StringComparison.Ordinal));
                        var m = re.Match(value);
                        return m.Success ? value[..m.Index] + replacement + value[(m.Index + m.Length)..] : value;
                    }

                case ':' or '+' or '-' or '?' or '#' or '%':
                    break;
                default:
                    throw new ExpandError($"unsupported modifier ({ops}) in substitution");
            }

            var nullIsUnset = false;
            if (op == ':')
            {
                nullIsUnset = true;
                op = Next();
                if (op == Eof)
                    throw new ExpandError("syntax error: missing '}'");
                ops += (char)op;
            }

            var rawEscapes = op is '#' or '%';
            if (nullIsUnset && rawEscapes)
                throw new ExpandError($"unsupported modifier ({ops}) in substitution");
            var (word, _) = Until('}', rawEscapes, "syntax error: missing '}'");
            set = Get(name, out value);
            if (!set && owner.KeepUnset)
                return "${" + name + ops + word + "}";
            var empty = !set || (nullIsUnset && value.Length == 0);
            switch (op)
            {
                case '-':
                    return empty ? word : value;
                case '+':
                    return empty ? string.Empty : word;
                case '?':
                    if (!set)
                        throw new ExpandError($"{name}: {(word.Length > 0 ? word : "is not allowed to be unset")}");
                    if (nullIsUnset && value.Length == 0)
                        throw new ExpandError($"{name}: {(word.Length > 0 ? word : "is not allowed to be empty")}");
                    return value;
                case '#' or '%':
                    {
                        var greedy = word.Length > 0 && word[0] == op;
                        if (greedy)
                            word = word[1..];
                        return op == '#' ? TrimPrefix(word, value, greedy) : TrimSuffix(word, value, greedy);
                    }

                default:
                    throw new ExpandError($"unsupported modifier ({ops}) in substitution");
            }
        }

        private static string TrimPrefix(string pattern, string value, bool greedy)
        {
            var m = PatternToRegex(pattern, greedy, anchored: true).Match(value);
            return m.Success ? value[m.Length..] : value;
        }

        private static string TrimSuffix(string pattern, string value, bool greedy)
        {
            // Shortest/longest match at the end: reverse both and match at the start.
            var reversed = TrimPrefix(ReversePattern(pattern), Reverse(value), greedy);
            return Reverse(reversed);
        }

        private static string Reverse(string s)
        {
            var a = s.ToCharArray();
            Array.Reverse(a);
            return new string(a);
        }

        /// <summary>Reverses a pattern keeping each escape before the character it escapes.</summary>
        private static string ReversePattern(string pattern)
        {
            var tokens = new List<string>();
            for (var i = 0; i < pattern.Length; i++)
            {
                if (pattern[i] == '\\' && i + 1 < pattern.Length)
                {
                    tokens.Add(pattern.Substring(i, 2));
                    i++;
                }
                else
                {
                    tokens.Add(pattern[i].ToString());
                }
            }

            tokens.Reverse();
            return string.Concat(tokens);
        }

        /// <summary>A shell pattern (<c>*</c>, <c>?</c>, <c>\</c> escapes; no brackets) as a regular expression.</summary>
        private static Regex PatternToRegex(string pattern, bool greedy, bool anchored)
        {
            var sb = new StringBuilder(anchored ? "^" : string.Empty);
            for (var i = 0; i < pattern.Length; i++)
            {
                var c = pattern[i];
                switch (c)
                {
                    case '*':
                        sb.Append(greedy ? ".*" : ".*?");
                        break;
                    case '?':
                        sb.Append('.');
                        break;
                    case '\\':
                        if (i + 1 < pattern.Length && pattern[i + 1] is '}' or '/')
                            break;
                        if (i + 1 >= pattern.Length || pattern[i + 1] is not ('*' or '?' or '\\'))
                        {
                            var bad = i + 1 < pattern.Length ? pattern[i + 1].ToString() : string.Empty;
                            throw new ExpandError($"invalid pattern ({pattern}) in substitution: invalid escape '\\{bad}'");
                        }

                        sb.Append('\\').Append(pattern[++i]);
                        break;
                    default:
                        sb.Append(Regex.Escape(c.ToString()));
                        break;
                }
            }

            return new Regex(sb.ToString(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
    }
}
