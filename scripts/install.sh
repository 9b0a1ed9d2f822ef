#!/usr/bin/env bash
# Installs tokenward's C library into a prefix: the one command for C and C++ users.
# Linux (ELF shared library with a SONAME); needs cargo, readelf and coreutils.
#
#   scripts/install.sh --prefix /usr/local      (default prefix: /usr/local)
#
# Options:
#   --prefix DIR   where to install                                  [/usr/local]
#   --libdir DIR   library directory, relative to the prefix          [lib]
#                  (e.g. lib64 or lib/x86_64-linux-gnu)
#   --no-build     install what is already built; do not run cargo
# Environment:
#   DESTDIR        staging root for packagers: files go to $DESTDIR$prefix/..., while the
#                  pkg-config file still names $prefix (the usual `make install` meaning)
#   TOKENWARD_LIBRARY, TOKENWARD_STATIC_LIBRARY
#                  install these prebuilt libraries instead of building (implies --no-build)
#   CARGO_TARGET_DIR  honoured through cargo, as for any cargo build
#
# Builds the release library (`cargo build --release --lib`), then installs:
#   include/tokenward.h
#   <libdir>/libtokenward.so.<version>               the shared library (SONAME libtokenward.so.<ABI>)
#   <libdir>/libtokenward.so.<ABI> -> libtokenward.so.<version>
#   <libdir>/libtokenward.so       -> libtokenward.so.<ABI>
#   <libdir>/libtokenward.a
#   <libdir>/pkgconfig/tokenward.pc
#   <libdir>/cmake/tokenward/tokenwardConfig.cmake, tokenwardConfigVersion.cmake
#     (find_package(tokenward CONFIG): imported targets tokenward::tokenward, shared,
#      and tokenward::tokenward_static)
# <version> is the crate's version in Cargo.toml; <ABI> is TW_ABI_VERSION, the C ABI's major
# version, which the build stamps into the SONAME. The CMake package is relocatable (it finds
# the prefix from its own location); the pkg-config file names the prefix.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
templates="$root/bindings/c"
prefix=/usr/local
libdir_rel=lib
build=1

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --libdir) [ $# -ge 2 ] || usage; libdir_rel=$2; shift 2 ;;
    --libdir=*) libdir_rel=${1#--libdir=}; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix=${prefix%/}
case "$libdir_rel" in
  /*|*..*|"") die "--libdir must be a directory inside the prefix, like lib or lib64 (got '$libdir_rel')" ;;
esac
libdir_rel=${libdir_rel%/}
destdir=${DESTDIR:-}

version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || die "no version in $root/Cargo.toml"

# --- the libraries --------------------------------------------------------------------------
shared=${TOKENWARD_LIBRARY:-}
static=${TOKENWARD_STATIC_LIBRARY:-}
if [ -n "$shared$static" ]; then
  [ -n "$shared" ] && [ -n "$static" ] || die "set both TOKENWARD_LIBRARY and TOKENWARD_STATIC_LIBRARY, or neither"
else
  command -v cargo >/dev/null || die "cargo not found; install Rust (rustup) or set TOKENWARD_LIBRARY and TOKENWARD_STATIC_LIBRARY"
  if [ $build -eq 1 ]; then
    echo "install.sh: cargo build --release --lib" >&2
    (cd "$root" && cargo build --release --lib) || die "cargo build failed"
  fi
  target=$(cd "$root" && cargo metadata --format-version 1 --no-deps \
             | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  [ -n "$target" ] || die "cannot find cargo's target directory (cargo metadata)"
  shared="$target/release/libtokenward.so"
  static="$target/release/libtokenward.a"
fi
header="$root/include/tokenward.h"
for f in "$shared" "$static" "$header"; do [ -f "$f" ] || die "missing $f (build first, or drop --no-build)"; done

command -v readelf >/dev/null || die "readelf (binutils) is needed to read the library's SONAME"
soname=$(readelf -d "$shared" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
abi=$(sed -n 's/^#define TW_ABI_VERSION \([0-9][0-9]*\)$/\1/p' "$header")
[ -n "$abi" ] || die "$header does not define TW_ABI_VERSION"
[ "$soname" = "libtokenward.so.$abi" ] \
  || die "$shared has SONAME '${soname:-none}', expected libtokenward.so.$abi (TW_ABI_VERSION of $header): rebuild it"
realname="libtokenward.so.$version"
case "$(readelf -h "$shared" | sed -n 's/^ *Class: *//p')" in
  ELF64) pointer_size=8 ;;
  ELF32) pointer_size=4 ;;
  *) die "$shared is not an ELF shared library" ;;
esac

# --- install --------------------------------------------------------------------------------
incdir="$destdir$prefix/include"
libdir="$destdir$prefix/$libdir_rel"
pcdir="$libdir/pkgconfig"
cmakedir="$libdir/cmake/tokenward"
mkdir -p "$incdir" "$libdir" "$pcdir" "$cmakedir" || die "cannot create directories under $destdir$prefix"

install -m 644 "$header" "$incdir/tokenward.h"
install -m 755 "$shared" "$libdir/$realname"
ln -sfn "$realname" "$libdir/$soname"
ln -sfn "$soname" "$libdir/libtokenward.so"
install -m 644 "$static" "$libdir/libtokenward.a"

sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir_rel|g" -e "s|@VERSION@|$version|g" \
  "$templates/tokenward.pc.in" > "$pcdir/tokenward.pc"

# From <libdir>/cmake/tokenward back up to the prefix: one ".." per component of the libdir,
# plus cmake/tokenward.
up=".."
IFS=/ read -r -a parts <<< "$libdir_rel"
for _ in "${parts[@]}" cmake; do up="$up/.."; done
sed -e "s|@RELATIVE_PREFIX@|$up|g" -e "s|@LIBDIR@|$libdir_rel|g" -e "s|@REALNAME@|$realname|g" \
    -e "s|@SONAME@|$soname|g" -e "s|@ABI@|$abi|g" \
  "$templates/cmake/tokenwardConfig.cmake.in" > "$cmakedir/tokenwardConfig.cmake"
sed -e "s|@VERSION@|$version|g" -e "s|@POINTER_SIZE@|$pointer_size|g" \
  "$templates/cmake/tokenwardConfigVersion.cmake.in" > "$cmakedir/tokenwardConfigVersion.cmake"

echo "installed tokenward $version (SONAME $soname) into $destdir$prefix:"
for f in "include/tokenward.h" "$libdir_rel/$realname" "$libdir_rel/$soname" "$libdir_rel/libtokenward.so" \
         "$libdir_rel/libtokenward.a" "$libdir_rel/pkgconfig/tokenward.pc" \
         "$libdir_rel/cmake/tokenward/tokenwardConfig.cmake" "$libdir_rel/cmake/tokenward/tokenwardConfigVersion.cmake"; do
  echo "  $prefix/$f"
done
