using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Tokenward
{
    /// <summary>
    /// Reads the JSON the native core writes (health, diagnosis) into plain values: objects as
    /// <c>Dictionary&lt;string, object&gt;</c>, arrays as <c>List&lt;object&gt;</c>, strings,
    /// <c>double</c> numbers, <c>bool</c> and null. netstandard2.0 has no JSON reader, and the
    /// documents are small and produced by the core, so a strict recursive reader is enough.
    /// </summary>
    internal sealed class JsonReader
    {
        private readonly string _text;
        private int _at;

        private JsonReader(string text)
        {
            _text = text;
        }

        /// <exception cref="TokenwardException">The text is not one JSON value.</exception>
        internal static object Parse(string text)
        {
            var reader = new JsonReader(text ?? string.Empty);
            object value = reader.Value(0);
            reader.Space();
            if (reader._at != reader._text.Length)
            {
                throw reader.Fail("text after the value");
            }
            return value;
        }

        /// <summary>Member <paramref name="name"/> of an object, or null.</summary>
        internal static object Member(object value, string name)
        {
            var map = value as Dictionary<string, object>;
            object member;
            return map != null && map.TryGetValue(name, out member) ? member : null;
        }

        internal static string String(object value, string name)
        {
            return Member(value, name) as string;
        }

        internal static long? Integer(object value, string name)
        {
            object member = Member(value, name);
            return member is double ? (long?)(long)(double)member : null;
        }

        private TokenwardException Fail(string what)
        {
            return TokenwardException.Create(
                TokenwardStatus.BadResponse,
                "tokenward: the native library returned malformed JSON (" + what + " at offset " + _at + ").");
        }

        private void Space()
        {
            while (_at < _text.Length && (_text[_at] == ' ' || _text[_at] == '\t' || _text[_at] == '\n' || _text[_at] == '\r'))
            {
                _at++;
            }
        }

        private object Value(int depth)
        {
            if (depth > 64)
            {
                throw Fail("nesting too deep");
            }
            Space();
            if (_at >= _text.Length)
            {
                throw Fail("end of text");
            }
            char c = _text[_at];
            switch (c)
            {
                case '{':
                    return Object(depth);
                case '[':
                    return Array(depth);
                case '"':
                    return String();
                case 't':
                    return Literal("true", true);
                case 'f':
                    return Literal("false", false);
                case 'n':
                    return Literal("null", null);
                default:
                    return Number();
            }
        }

        private object Literal(string word, object value)
        {
            if (string.CompareOrdinal(_text, _at, word, 0, word.Length) != 0)
            {
                throw Fail("unknown literal");
            }
            _at += word.Length;
            return value;
        }

        private Dictionary<string, object> Object(int depth)
        {
            var map = new Dictionary<string, object>(StringComparer.Ordinal);
            _at++;
            Space();
            if (_at < _text.Length && _text[_at] == '}')
            {
                _at++;
                return map;
            }
            while (true)
            {
                Space();
                if (_at >= _text.Length || _text[_at] != '"')
                {
                    throw Fail("expected a member name");
                }
                string name = String();
                Space();
                Expect(':');
                map[name] = Value(depth + 1);
                Space();
                if (_at < _text.Length && _text[_at] == ',')
                {
                    _at++;
                    continue;
                }
                Expect('}');
                return map;
            }
        }

        private List<object> Array(int depth)
        {
            var list = new List<object>();
            _at++;
            Space();
            if (_at < _text.Length && _text[_at] == ']')
            {
                _at++;
                return list;
            }
            while (true)
            {
                list.Add(Value(depth + 1));
                Space();
                if (_at < _text.Length && _text[_at] == ',')
                {
                    _at++;
                    continue;
                }
                Expect(']');
                return list;
            }
        }

        private void Expect(char c)
        {
            if (_at >= _text.Length || _text[_at] != c)
            {
                throw Fail("expected '" + c + "'");
            }
            _at++;
        }

        private string String()
        {
            _at++;
            var text = new StringBuilder();
            while (true)
            {
                if (_at >= _text.Length)
                {
                    throw Fail("unterminated string");
                }
                char c = _text[_at++];
                if (c == '"')
                {
                    return text.ToString();
                }
                if (c != '\\')
                {
                    text.Append(c);
                    continue;
                }
                if (_at >= _text.Length)
                {
                    throw Fail("unterminated escape");
                }
                char escape = _text[_at++];
                switch (escape)
                {
                    case '"': text.Append('"'); break;
                    case '\\': text.Append('\\'); break;
                    case '/': text.Append('/'); break;
                    case 'b': text.Append('\b'); break;
                    case 'f': text.Append('\f'); break;
                    case 'n': text.Append('\n'); break;
                    case 'r': text.Append('\r'); break;
                    case 't': text.Append('\t'); break;
                    case 'u':
                        int code;
                        if (_at + 4 > _text.Length
                            || !int.TryParse(_text.Substring(_at, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                        {
                            throw Fail("bad \\u escape");
                        }
                        text.Append((char)code);
                        _at += 4;
                        break;
                    default:
                        throw Fail("bad escape");
                }
            }
        }

        private double Number()
        {
            int start = _at;
            while (_at < _text.Length && "+-0123456789.eE".IndexOf(_text[_at]) >= 0)
            {
                _at++;
            }
            double value;
            if (_at == start
                || !double.TryParse(_text.Substring(start, _at - start), NumberStyles.Float, CultureInfo.InvariantCulture, out value))
            {
                throw Fail("expected a value");
            }
            return value;
        }
    }
}
