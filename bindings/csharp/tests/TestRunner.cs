using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Reflection;
using System.Threading;

namespace Tokenward.Tests
{
    /// <summary>Marks a test: a static method without parameters, run in declaration order.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class TestAttribute : Attribute
    {
    }

    internal sealed class AssertionException : Exception
    {
        internal AssertionException(string message)
            : base(message)
        {
        }
    }

    /// <summary>
    /// A minimal test runner: runs every [Test] method against the mock at $TOKENWARD_MOCK_URL
    /// (reset before each test), prints one line per test and a closing "N passed, M failed"
    /// line, and exits 1 on any failure. A whole-run watchdog exits 3 if a test hangs.
    /// Optional argument: a substring of the test names to run (or the library probe's flag,
    /// see <see cref="LibraryTests"/>).
    /// </summary>
    internal static class TestRunner
    {
        private static int Main(string[] args)
        {
            if (args.Length == 1 && args[0] == LibraryTests.ProbeFlag)
            {
                return LibraryTests.RunProbe();
            }
            string url = Environment.GetEnvironmentVariable("TOKENWARD_MOCK_URL");
            if (string.IsNullOrEmpty(url))
            {
                Console.Error.WriteLine("TOKENWARD_MOCK_URL is not set; run the tests with bindings/csharp/run_tests.sh");
                return 2;
            }
            Mock.Init(url);
            int limit;
            if (!int.TryParse(Environment.GetEnvironmentVariable("TW_TEST_TIMEOUT_SECS"), out limit))
            {
                limit = 180;
            }
            var watchdog = new Timer(
                state =>
                {
                    Console.WriteLine("watchdog: the tests did not finish within {0} s", limit);
                    Console.Out.Flush();
                    Environment.Exit(3);
                },
                null, limit * 1000, Timeout.Infinite);

            string filter = args.Length > 0 ? args[0] : null;
            Console.WriteLine("tokenward {0} (native), mock {1}", TokenClient.NativeVersion, url);
            int passed = 0, failed = 0;
            var failures = new List<string>();
            foreach (Type type in typeof(TestRunner).Assembly.GetTypes())
            {
                foreach (MethodInfo method in type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public))
                {
                    if (method.GetCustomAttributes(typeof(TestAttribute), false).Length == 0)
                    {
                        continue;
                    }
                    string name = type.Name + "." + method.Name;
                    if (filter != null && name.IndexOf(filter, StringComparison.OrdinalIgnoreCase) < 0)
                    {
                        continue;
                    }
                    var clock = Stopwatch.StartNew();
                    try
                    {
                        Mock.Reset();
                        method.Invoke(null, null);
                        passed++;
                        Console.WriteLine("ok      {0} ({1} ms)", name, clock.ElapsedMilliseconds);
                    }
                    catch (Exception exception)
                    {
                        Exception cause = exception is TargetInvocationException && exception.InnerException != null
                            ? exception.InnerException
                            : exception;
                        failed++;
                        failures.Add(name);
                        Console.WriteLine("FAILED  {0} ({1} ms): {2}", name, clock.ElapsedMilliseconds, cause);
                    }
                }
            }
            watchdog.Dispose();
            foreach (string name in failures)
            {
                Console.WriteLine("FAILED: " + name);
            }
            Console.WriteLine("{0} passed, {1} failed", passed, failed);
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }

    internal static class Assert
    {
        internal static void True(bool condition, string what)
        {
            if (!condition)
            {
                throw new AssertionException(what);
            }
        }

        internal static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
            }
        }

        internal static void Contains(string needle, string haystack, string what)
        {
            if (haystack == null || haystack.IndexOf(needle, StringComparison.Ordinal) < 0)
            {
                throw new AssertionException(what + ": <" + needle + "> not found in <" + haystack + ">");
            }
        }

        internal static void NotContains(string needle, string haystack, string what)
        {
            if (haystack != null && haystack.IndexOf(needle, StringComparison.Ordinal) >= 0)
            {
                throw new AssertionException(what + ": <" + needle + "> must not appear in <" + haystack + ">");
            }
        }

        /// <summary>Runs <paramref name="action"/> and returns the exception of exactly type <typeparamref name="T"/> it throws.</summary>
        internal static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (Exception exception)
            {
                if (exception.GetType() == typeof(T))
                {
                    return (T)exception;
                }
                throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + exception);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }
}
