using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;

namespace Tokenward.Tests
{
    /// <summary>The mock identity provider + API (docs/mock.md): admin calls and small JSON helpers.</summary>
    internal static class Mock
    {
        private static readonly HttpClient Admin = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

        internal static string Url { get; private set; }

        internal static string TokenUrl
        {
            get { return Url + "/oauth/token"; }
        }

        internal static void Init(string url)
        {
            Url = url.TrimEnd('/');
        }

        /// <summary>The usual options for the mock: demo client, loopback http, the API's two required headers.</summary>
        internal static TokenClientOptions Options()
        {
            return new TokenClientOptions
            {
                TokenUrl = TokenUrl,
                ClientId = "demo-client",
                ClientSecret = "demo-secret",
                Scope = "EventsApi",
                AllowHttp = true,
                Headers = { ["tenant-code"] = "T1", ["api-version"] = "2" },
            };
        }

        internal static void Reset()
        {
            Post("reset", "{}");
        }

        internal static void Configure(string json)
        {
            Post("config", json);
        }

        internal static void Fault(string json)
        {
            Post("fault", json);
        }

        internal static void Revoke()
        {
            Post("revoke", "{}");
        }

        internal static long TokenRequests
        {
            get { return Counter(Get("stats"), "token_requests"); }
        }

        internal static long ApiRequests
        {
            get { return Counter(Get("stats"), "api_requests"); }
        }

        internal static string Requests()
        {
            return Get("requests");
        }

        internal static string Get(string name)
        {
            using (HttpResponseMessage response = Admin.GetAsync(Url + "/admin/" + name).Result)
            {
                string body = response.Content.ReadAsStringAsync().Result;
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException("mock GET /admin/" + name + ": " + (int)response.StatusCode + " " + body);
                }
                return body;
            }
        }

        internal static string Post(string name, string json)
        {
            var content = new StringContent(json, Encoding.UTF8, "application/json");
            using (HttpResponseMessage response = Admin.PostAsync(Url + "/admin/" + name, content).Result)
            {
                string body = response.Content.ReadAsStringAsync().Result;
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException("mock POST /admin/" + name + " " + json + ": " + (int)response.StatusCode + " " + body);
                }
                return body;
            }
        }

        internal static long Counter(string json, string name)
        {
            Match match = Regex.Match(json, "\"" + name + "\":(\\d+)");
            if (!match.Success)
            {
                throw new InvalidOperationException("no " + name + " in " + json);
            }
            return long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        /// <summary>The decoded string value of the first <c>"name":"..."</c> member in <paramref name="json"/>; null when absent or not a string.</summary>
        internal static string StringMember(string json, string name)
        {
            string key = "\"" + name + "\":\"";
            int at = json.IndexOf(key, StringComparison.Ordinal);
            if (at < 0)
            {
                return null;
            }
            at += key.Length;
            var value = new StringBuilder();
            while (json[at] != '"')
            {
                char c = json[at++];
                if (c != '\\')
                {
                    value.Append(c);
                    continue;
                }
                char e = json[at++];
                switch (e)
                {
                    case 'n': value.Append('\n'); break;
                    case 'r': value.Append('\r'); break;
                    case 't': value.Append('\t'); break;
                    case 'b': value.Append('\b'); break;
                    case 'f': value.Append('\f'); break;
                    case 'u':
                        value.Append((char)int.Parse(json.Substring(at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        at += 4;
                        break;
                    default: value.Append(e); break;
                }
            }
            return value.ToString();
        }

        /// <summary>The JSON payload of a JWT (its middle segment, base64url without padding).</summary>
        internal static string Claims(string jwt)
        {
            string[] parts = jwt.Split('.');
            if (parts.Length != 3)
            {
                throw new InvalidOperationException("not a JWT: " + jwt.Length + " characters");
            }
            string segment = parts[1].Replace('-', '+').Replace('_', '/');
            segment += new string('=', (4 - segment.Length % 4) % 4);
            return Encoding.UTF8.GetString(Convert.FromBase64String(segment));
        }

        /// <summary>GET <paramref name="path"/> on the mock API with exactly these headers; returns (status, body).</summary>
        internal static KeyValuePair<int, string> CallApi(string path, IEnumerable<KeyValuePair<string, string>> headers)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, Url + path);
            foreach (KeyValuePair<string, string> header in headers)
            {
                request.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            using (HttpResponseMessage response = Admin.SendAsync(request).Result)
            {
                return new KeyValuePair<int, string>((int)response.StatusCode, response.Content.ReadAsStringAsync().Result);
            }
        }

        /// <summary>A loopback port nothing listens on (bound, then released).</summary>
        internal static int ClosedPort()
        {
            var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }
    }
}
