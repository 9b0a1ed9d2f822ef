using System.Runtime.CompilerServices;

// The test runner checks internals (the JSON writer, the live-handle count) and the benchmark
// times the native round trip a memo hit avoids.
[assembly: InternalsVisibleTo("Tokenward.Tests")]
[assembly: InternalsVisibleTo("Tokenward.Bench")]
