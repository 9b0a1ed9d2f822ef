using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Tokenward
{
    /// <summary>
    /// The small JSON writer behind <see cref="TokenClientOptions"/>: objects of strings,
    /// integers, booleans and string lists, escaped per RFC 8259 §7. Not thread-safe; one per
    /// serialization.
    /// </summary>
    internal sealed class JsonWriter
    {
        private readonly StringBuilder _text = new StringBuilder(256);
        private bool _needComma;

        public override string ToString()
        {
            return _text.ToString();
        }

        internal void BeginObject()
        {
            Separate();
            _text.Append('{');
            _needComma = false;
        }

        internal void EndObject()
        {
            _text.Append('}');
            _needComma = true;
        }

        /// <summary>Writes <c>"name":</c>; the value call that follows completes the member.</summary>
        internal void Name(string name)
        {
            Separate();
            WriteString(name);
            _text.Append(':');
            _needComma = false;
        }

        internal void Value(string value)
        {
            Separate();
            WriteString(value);
            _needComma = true;
        }

        internal void Value(long value)
        {
            Separate();
            _text.Append(value.ToString(CultureInfo.InvariantCulture));
            _needComma = true;
        }

        internal void Value(bool value)
        {
            Separate();
            _text.Append(value ? "true" : "false");
            _needComma = true;
        }

        internal void Value(IEnumerable<string> values)
        {
            Separate();
            _text.Append('[');
            _needComma = false;
            foreach (string value in values)
            {
                Value(value);
            }
            _text.Append(']');
            _needComma = true;
        }

        internal void Value(IEnumerable<KeyValuePair<string, string>> members)
        {
            BeginObject();
            foreach (KeyValuePair<string, string> member in members)
            {
                Name(member.Key);
                Value(member.Value);
            }
            EndObject();
        }

        private void Separate()
        {
            if (_needComma)
            {
                _text.Append(',');
                _needComma = false;
            }
        }

        private void WriteString(string value)
        {
            if (value == null)
            {
                _text.Append("null");
                return;
            }
            _text.Append('"');
            foreach (char c in value)
            {
                switch (c)
                {
                    case '"': _text.Append("\\\""); break;
                    case '\\': _text.Append("\\\\"); break;
                    case '\n': _text.Append("\\n"); break;
                    case '\r': _text.Append("\\r"); break;
                    case '\t': _text.Append("\\t"); break;
                    case '\b': _text.Append("\\b"); break;
                    case '\f': _text.Append("\\f"); break;
                    default:
                        if (c < 0x20)
                        {
                            _text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            // Everything else, non-ASCII included, is written as is: the whole
                            // document is encoded as strict UTF-8 afterwards, which rejects an
                            // unpaired surrogate instead of sending a replacement character.
                            _text.Append(c);
                        }
                        break;
                }
            }
            _text.Append('"');
        }
    }
}
