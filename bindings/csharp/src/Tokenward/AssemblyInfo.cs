using System.Reflection;
using System.Runtime.CompilerServices;

// The tokenward release this assembly belongs to: the version in Cargo.toml, which the native
// library reports as tw_version(). Tokenward.csproj's <Version> is the same number (it names
// the NuGet package); the C# tests fail when any of the three differs.
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
[assembly: AssemblyInformationalVersion("0.1.0")]

// The test runner checks internals (the JSON writer, the live-handle count) and the benchmark
// times the native round trip a memo hit avoids.
[assembly: InternalsVisibleTo("Tokenward.Tests")]
[assembly: InternalsVisibleTo("Tokenward.Bench")]
