using System;
using System.Diagnostics;
using System.IO;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Tokenward.Tests
{
    /// <summary>
    /// Versions, and the check that refuses a native library of another ABI. A library can be
    /// loaded once per process, so each foreign library is tried in a child process: this
    /// runner started with <c>--library-probe</c> from a temporary directory that holds
    /// Tokenward.dll and, as libtokenward.so, a small shim built with gcc.
    /// </summary>
    internal static class LibraryTests
    {
        internal const string ProbeFlag = "--library-probe";

        [Test]
        private static void VersionsAgreeWithCargoToml()
        {
            string repo = Environment.GetEnvironmentVariable("TOKENWARD_REPO");
            Assert.True(!string.IsNullOrEmpty(repo), "TOKENWARD_REPO names the repository (run_tests.sh sets it)");
            Match cargo = Regex.Match(File.ReadAllText(Path.Combine(repo, "Cargo.toml")), "^\\[package\\][^\\[]*?^version\\s*=\\s*\"([^\"]+)\"", RegexOptions.Multiline);
            Assert.True(cargo.Success, "Cargo.toml has a [package] version");
            string version = cargo.Groups[1].Value;

            Assert.Equal(version, TokenClient.Version, "TokenClient.Version (AssemblyInformationalVersion)");
            Assert.Equal(version, TokenClient.NativeVersion, "tw_version() of the native library");
            string numeric = Regex.Match(version, "^\\d+\\.\\d+\\.\\d+").Value;
            Assert.Equal(new Version(numeric + ".0"), typeof(TokenClient).Assembly.GetName().Version, "AssemblyVersion");
            var file = (AssemblyFileVersionAttribute)Attribute.GetCustomAttribute(typeof(TokenClient).Assembly, typeof(AssemblyFileVersionAttribute));
            Assert.Equal(numeric + ".0", file.Version, "AssemblyFileVersion");
            string project = File.ReadAllText(Path.Combine(repo, "bindings", "csharp", "src", "Tokenward", "Tokenward.csproj"));
            Assert.Equal(version, Regex.Match(project, "<Version>([^<]*)</Version>").Groups[1].Value, "<Version> of Tokenward.csproj (the NuGet package)");
        }

        [Test]
        private static void AbiVersionMatchesTheHeaderAndTheLibrary()
        {
            string repo = Environment.GetEnvironmentVariable("TOKENWARD_REPO");
            Assert.True(!string.IsNullOrEmpty(repo), "TOKENWARD_REPO names the repository (run_tests.sh sets it)");
            Match header = Regex.Match(File.ReadAllText(Path.Combine(repo, "include", "tokenward.h")), "^#define TW_ABI_VERSION (\\d+)$", RegexOptions.Multiline);
            Assert.True(header.Success, "include/tokenward.h defines TW_ABI_VERSION");
            Assert.Equal(int.Parse(header.Groups[1].Value), NativeMethods.AbiVersion, "the binding's ABI version is the header's");
            NativeMethods.EnsureCompatible();
            Assert.Equal(NativeMethods.AbiVersion, NativeMethods.tw_abi_version(), "tw_abi_version() of the library under test");
        }

        [Test]
        private static void ALibraryOfAnotherAbiVersionIsRefused()
        {
            int other = NativeMethods.AbiVersion + 1;
            string output = Probe("#include <stdint.h>\nint32_t tw_abi_version(void) { return " + other + "; }\n", null);
            Assert.Contains("TokenwardLibraryException", output, "the exception type");
            Assert.Contains("C ABI version " + other + ", but this Tokenward.dll " + TokenClient.Version
                + " was written for C ABI version " + NativeMethods.AbiVersion, output, "both versions");
            Assert.Contains("actual ABI: " + other + "; expected ABI: " + NativeMethods.AbiVersion, output, "the properties");
            Assert.Contains("again: the same", output, "a later use fails the same way");
        }

        [Test]
        private static void ALibraryWithoutTheAbiCheckIsRefused()
        {
            string output = Probe("const char *tw_version(void) { return \"0.0.1\"; }\n", null);
            Assert.Contains("TokenwardLibraryException", output, "the exception type");
            Assert.Contains("does not export tw_abi_version", output, "what is missing");
            Assert.Contains("needs C ABI version " + NativeMethods.AbiVersion, output, "the version the binding needs");
            Assert.Contains("actual ABI: none", output, "no version to report");
        }

        [Test]
        private static void AMissingLibraryIsReported()
        {
            // Mono's dllmap points the import at a file that does not exist.
            string output = Probe(null, "<configuration><dllmap dll=\"tokenward\" target=\"/nonexistent/libtokenward.so\" /></configuration>");
            Assert.Contains("TokenwardLibraryException", output, "the exception type");
            Assert.Contains("the native library was not found", output, "the message");
            Assert.Contains("path: none", output, "no path");
            Assert.Contains("inner: System.DllNotFoundException", output, "the loader's exception is kept");
        }

        /// <summary>
        /// Runs the probe in a temporary directory holding Tokenward.dll, the runner, the shim
        /// built from <paramref name="shimSource"/> (none when null) as libtokenward.so, and
        /// <paramref name="dllConfig"/> as Tokenward.dll.config (when not null); returns what it
        /// printed, after checking that it names the shim's path.
        /// </summary>
        private static string Probe(string shimSource, string dllConfig)
        {
            string here = Path.GetDirectoryName(typeof(LibraryTests).Assembly.Location);
            string dir = Path.Combine(Path.GetTempPath(), "tokenward-library-probe-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                File.Copy(Path.Combine(here, "Tokenward.dll"), Path.Combine(dir, "Tokenward.dll"));
                File.Copy(typeof(LibraryTests).Assembly.Location, Path.Combine(dir, "Tokenward.Tests.exe"));
                string shim = Path.Combine(dir, "libtokenward.so");
                if (shimSource != null)
                {
                    File.WriteAllText(Path.Combine(dir, "shim.c"), shimSource);
                    string gcc = Run("gcc", "-shared -fPIC -o " + shim + " " + Path.Combine(dir, "shim.c"), dir);
                    Assert.True(File.Exists(shim), "gcc built the shim: " + gcc);
                }
                if (dllConfig != null)
                {
                    File.WriteAllText(Path.Combine(dir, "Tokenward.dll.config"), dllConfig);
                }
                string mono = Process.GetCurrentProcess().MainModule.FileName;
                string output = Run(mono, "--debug " + Path.Combine(dir, "Tokenward.Tests.exe") + " " + ProbeFlag, dir);
                if (shimSource != null)
                {
                    Assert.Contains("the native library " + shim + " ", output, "the message names the library's path");
                    Assert.Contains("path: " + shim, output, "LibraryPath");
                }
                return output;
            }
            finally
            {
                Directory.Delete(dir, true);
            }
        }

        /// <summary>Runs a program to completion (at most 60 s) without LD_LIBRARY_PATH; returns stdout and stderr.</summary>
        private static string Run(string program, string arguments, string directory)
        {
            var start = new ProcessStartInfo(program, arguments)
            {
                WorkingDirectory = directory,
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            // Otherwise the test build's real library could be found instead of the shim.
            start.EnvironmentVariables.Remove("LD_LIBRARY_PATH");
            using (Process process = Process.Start(start))
            {
                var error = process.StandardError.ReadToEndAsync();
                string output = process.StandardOutput.ReadToEnd();
                if (!process.WaitForExit(60000))
                {
                    process.Kill();
                    throw new AssertionException(program + " did not finish within 60 s");
                }
                return output + error.Result;
            }
        }

        /// <summary>
        /// The child's side: uses the library the way an application would and prints what
        /// happened. Exit status 0 when a <see cref="TokenwardLibraryException"/> was thrown.
        /// </summary>
        internal static int RunProbe()
        {
            TokenwardLibraryException first;
            try
            {
                using (new TokenClient(new TokenClientOptions { TokenUrl = "http://127.0.0.1:9/oauth/token", ClientId = "probe", ClientSecret = "probe", AllowHttp = true }))
                {
                    Console.WriteLine("the client was created: the library was accepted");
                    return 1;
                }
            }
            catch (TokenwardLibraryException exception)
            {
                first = exception;
            }
            Console.WriteLine(first.GetType().Name + ": " + first.Message);
            Console.WriteLine("path: " + (first.LibraryPath ?? "none"));
            Console.WriteLine("actual ABI: " + (first.ActualAbiVersion.HasValue ? first.ActualAbiVersion.Value.ToString() : "none")
                + "; expected ABI: " + first.ExpectedAbiVersion);
            Console.WriteLine("inner: " + (first.InnerException == null ? "none" : first.InnerException.GetType().FullName));
            try
            {
                Console.WriteLine("again: accepted, version " + TokenClient.NativeVersion);
                return 1;
            }
            catch (TokenwardLibraryException again)
            {
                Console.WriteLine(again.Message == first.Message ? "again: the same" : "again: " + again.Message);
            }
            return 0;
        }
    }
}
