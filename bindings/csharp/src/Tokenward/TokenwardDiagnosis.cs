using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Tokenward
{
    /// <summary>One step of a <see cref="TokenwardDiagnosis"/>. Immutable.</summary>
    public sealed class TokenwardCheck
    {
        /// <summary><c>config</c>, <c>dns</c>, <c>tcp</c>, <c>proxy</c>, <c>tls</c>, <c>clock</c>, <c>token</c>, <c>token_sanity</c> or <c>probe</c>.</summary>
        public string Id { get; private set; }

        /// <summary>A human title, e.g. <c>token request</c>.</summary>
        public string Title { get; private set; }

        /// <summary><c>pass</c>, <c>warn</c>, <c>fail</c> or <c>skip</c>.</summary>
        public string Status { get; private set; }

        /// <summary>One line saying what was found.</summary>
        public string Summary { get; private set; }

        /// <summary>Further lines (for <c>config</c>: each key, its redacted value and source).</summary>
        public IReadOnlyList<string> Details { get; private set; }

        /// <summary>For a warning or failure: the most likely cause; else null.</summary>
        public string Cause { get; private set; }

        /// <summary>For a warning or failure: what to do; else null.</summary>
        public string Fix { get; private set; }

        /// <summary>For a failure: its error family, e.g. <c>invalid_client</c>; else null.</summary>
        public string ErrorKind { get; private set; }

        /// <summary>The HTTP status the check saw, if it made a request that was answered.</summary>
        public int? HttpStatus { get; private set; }

        /// <summary><c>✓ title: summary</c> (or <c>!</c>, <c>✗</c>, <c>-</c>), then details, cause and fix.</summary>
        public override string ToString()
        {
            string symbol = Status == "pass" ? "✓" : Status == "warn" ? "!" : Status == "fail" ? "✗" : "-";
            var text = new StringBuilder(symbol + " " + Title + ": " + Summary);
            foreach (string line in Details)
            {
                text.Append("\n    ").Append(line);
            }
            if (Cause != null)
            {
                text.Append("\n    cause: ").Append(Cause);
            }
            if (Fix != null)
            {
                text.Append("\n    fix: ").Append(Fix);
            }
            return text.ToString();
        }

        internal static TokenwardCheck From(object check)
        {
            var details = new List<string>();
            var lines = JsonReader.Member(check, "details") as List<object>;
            if (lines != null)
            {
                foreach (object line in lines)
                {
                    details.Add(line as string ?? string.Empty);
                }
            }
            long? status = JsonReader.Integer(check, "http_status");
            return new TokenwardCheck
            {
                Id = JsonReader.String(check, "id") ?? string.Empty,
                Title = JsonReader.String(check, "title") ?? string.Empty,
                Status = JsonReader.String(check, "status") ?? string.Empty,
                Summary = JsonReader.String(check, "summary") ?? string.Empty,
                Details = details.AsReadOnly(),
                Cause = JsonReader.String(check, "cause"),
                Fix = JsonReader.String(check, "fix"),
                ErrorKind = JsonReader.String(check, "error_kind"),
                HttpStatus = status.HasValue ? (int?)(int)status.Value : null,
            };
        }
    }

    /// <summary>
    /// The result of <see cref="TokenClient.Diagnose"/>: every check in order and a verdict.
    /// Contains no secret and no token. Immutable.
    /// </summary>
    public sealed class TokenwardDiagnosis
    {
        /// <summary>Whether no check failed (warnings allowed).</summary>
        public bool Ok { get; private set; }

        /// <summary><see cref="TokenwardStatus.Ok"/>, or the status of the first failure's error family.</summary>
        public TokenwardStatus Status { get; private set; }

        /// <summary>The verdict line: the first failure, else the first warning, else "✓ all N checks passed".</summary>
        public string Verdict { get; private set; }

        /// <summary>The checks, in the order they ran.</summary>
        public IReadOnlyList<TokenwardCheck> Checks { get; private set; }

        /// <summary>The native JSON this was read from (see docs/cli.md for its shape).</summary>
        public string Json { get; private set; }

        /// <summary>Every check, then <c>verdict: …</c> — what <c>tokenward doctor</c> prints.</summary>
        public override string ToString()
        {
            var text = new StringBuilder();
            foreach (TokenwardCheck check in Checks)
            {
                text.Append(check).Append('\n');
            }
            return text.Append("verdict: ").Append(Verdict).ToString();
        }

        internal static TokenwardDiagnosis Read(TokenwardDiagnosisHandle handle)
        {
            string json = NativeMethods.ReadString(
                (byte[] buf, UIntPtr cap, out UIntPtr len) => NativeMethods.tw_diagnosis_json(handle, buf, cap, out len));
            object root = JsonReader.Parse(json);
            var checks = new List<TokenwardCheck>();
            var list = JsonReader.Member(root, "checks") as List<object>;
            if (list != null)
            {
                foreach (object check in list)
                {
                    checks.Add(TokenwardCheck.From(check));
                }
            }
            return new TokenwardDiagnosis
            {
                Ok = JsonReader.Member(root, "ok") as bool? ?? false,
                Status = (TokenwardStatus)NativeMethods.tw_diagnosis_status(handle),
                Verdict = JsonReader.String(root, "verdict") ?? string.Empty,
                Checks = checks.AsReadOnly(),
                Json = json,
            };
        }
    }

    /// <summary>Owns a native <c>tw_diagnosis</c>.</summary>
    internal sealed class TokenwardDiagnosisHandle : SafeHandle
    {
        /// <summary>For the P/Invoke marshaller.</summary>
        public TokenwardDiagnosisHandle()
            : base(IntPtr.Zero, true)
        {
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.tw_diagnosis_free(handle);
            return true;
        }
    }
}
