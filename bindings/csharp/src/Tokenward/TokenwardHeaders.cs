using System;
using System.Collections;
using System.Collections.Generic;

namespace Tokenward
{
    /// <summary>
    /// The headers of <see cref="TokenClient.GetHeaders"/>: immutable, enumerated in the order
    /// to send them (<c>Authorization</c> first, then the configured static headers), looked up
    /// case-insensitively as HTTP header names are. Safe to share between threads.
    /// </summary>
    internal sealed class TokenwardHeaders : IReadOnlyDictionary<string, string>
    {
        private readonly KeyValuePair<string, string>[] _ordered;
        private readonly Dictionary<string, string> _byName;

        private TokenwardHeaders(List<KeyValuePair<string, string>> ordered)
        {
            _ordered = ordered.ToArray();
            _byName = new Dictionary<string, string>(_ordered.Length, StringComparer.OrdinalIgnoreCase);
            foreach (KeyValuePair<string, string> header in _ordered)
            {
                _byName[header.Key] = header.Value;
            }
        }

        /// <summary>Parses the <c>"Name: value\r\n"</c> lines of <c>tw_client_headers</c>.</summary>
        internal static TokenwardHeaders Parse(string lines)
        {
            var ordered = new List<KeyValuePair<string, string>>(4);
            foreach (string line in lines.Split(new[] { "\r\n" }, StringSplitOptions.RemoveEmptyEntries))
            {
                int colon = line.IndexOf(':');
                if (colon > 0)
                {
                    ordered.Add(new KeyValuePair<string, string>(
                        line.Substring(0, colon), line.Substring(colon + 1).Trim(' ')));
                }
            }
            return new TokenwardHeaders(ordered);
        }

        /// <summary>The first header's value: <c>Authorization</c>'s, by the ABI's contract.</summary>
        internal string First
        {
            get { return _ordered.Length == 0 ? string.Empty : _ordered[0].Value; }
        }

        public int Count
        {
            get { return _ordered.Length; }
        }

        public IEnumerable<string> Keys
        {
            get
            {
                foreach (KeyValuePair<string, string> header in _ordered)
                {
                    yield return header.Key;
                }
            }
        }

        public IEnumerable<string> Values
        {
            get
            {
                foreach (KeyValuePair<string, string> header in _ordered)
                {
                    yield return header.Value;
                }
            }
        }

        public string this[string key]
        {
            get { return _byName[key]; }
        }

        public bool ContainsKey(string key)
        {
            return _byName.ContainsKey(key);
        }

        public bool TryGetValue(string key, out string value)
        {
            return _byName.TryGetValue(key, out value);
        }

        public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
        {
            return ((IEnumerable<KeyValuePair<string, string>>)_ordered).GetEnumerator();
        }

        IEnumerator IEnumerable.GetEnumerator()
        {
            return GetEnumerator();
        }

        /// <summary>Header names only: the values carry the token.</summary>
        public override string ToString()
        {
            return "TokenwardHeaders [" + string.Join(", ", Keys) + "]";
        }
    }
}
