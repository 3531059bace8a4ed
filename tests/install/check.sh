#!/bin/sh
# usage: check.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$CMAKE_COMMAND" --install "$build" --prefix "$work/prefix" >/dev/null
lib=$work/prefix/lib
[ -d "$work/prefix/lib64" ] && lib=$work/prefix/lib64
# 1. find_package(trifle) + trifle::trifle and trifle::simple
"$CMAKE_COMMAND" -S "$src/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
"$CMAKE_COMMAND" --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH=$lib "$work/cmake/consumer" "$lib/trifle-1"
LD_LIBRARY_PATH=$lib "$work/cmake/consumer_simple"
# 2. pkg-config
PKG_CONFIG_PATH=$lib/pkgconfig
export PKG_CONFIG_PATH
$CC -std=c11 $(pkg-config --cflags trifle) "$src/consumer/main.c" -o "$work/pc" $(pkg-config --libs trifle)
out=$(LD_LIBRARY_PATH=$lib "$work/pc" "$(pkg-config --variable=plugindir trifle)")
echo "$out"
$CC -std=c11 $(pkg-config --cflags trifle-simple) "$src/consumer/simple_main.c" -o "$work/pc_simple" \
    $(pkg-config --libs trifle-simple)
LD_LIBRARY_PATH=$lib "$work/pc_simple"
# one version: the pkg-config file, the CMake package, the library and the CLI agree
version=$(pkg-config --modversion trifle)
case $out in
"trifle $version, "*) ;;
*) echo "trifle_version() is not the pkg-config version $version" >&2; exit 1 ;;
esac
grep -q "PACKAGE_VERSION \"$version\"" "$lib/cmake/trifle/trifleConfigVersion.cmake" ||
    { echo "trifleConfigVersion.cmake does not say $version" >&2; exit 1; }
if [ -x "$work/prefix/bin/trifle" ]; then
    case $(LD_LIBRARY_PATH=$lib "$work/prefix/bin/trifle" version) in
    "{\"version\":\"$version\","*) ;;
    *) echo "trifle version does not say $version" >&2; exit 1 ;;
    esac
fi
# 2b. the driver kit: a third-party plugin built with trifle_add_driver() (CMake, step 1) and one
#     built with pkg-config link the installed helpers, export only their entry, and work
[ -f "$lib/libtrifle-driver-kit.a" ] && [ -f "$work/prefix/include/trifle-driver-kit/drv_support.h" ] ||
    { echo "the driver kit is not installed" >&2; exit 1; }
LD_LIBRARY_PATH=$lib "$work/cmake/consumer" "$work/cmake/plugins" kitdemo
mkdir "$work/pcplugins"
$CC -std=c11 -shared -fPIC -fvisibility=hidden -Wl,--no-undefined \
    $(pkg-config --cflags trifle-driver-kit) "$src/consumer/kit_plugin.c" \
    -o "$work/pcplugins/trifle_kitdemo.so" $(pkg-config --libs trifle-driver-kit)
LD_LIBRARY_PATH=$lib "$work/cmake/consumer" "$work/pcplugins" kitdemo
for so in "$work/cmake/plugins/trifle_kitdemo.so" "$work/pcplugins/trifle_kitdemo.so"; do
    exports=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRW]$/ {print $3}')
    [ "$exports" = trifle_driver_kitdemo_init ] || { echo "$so exports: $exports" >&2; exit 1; }
done
# 3. every installed plugin exports exactly its entry symbol
for so in "$lib"/trifle-1/trifle_*.so; do
    name=$(basename "$so" .so)
    name=${name#trifle_}
    exports=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRW]$/ {print $3}')
    if [ "$exports" != "trifle_driver_${name}_init" ]; then
        echo "$so exports: $exports" >&2
        exit 1
    fi
done
# 4. libtrifle links no database client
if ldd "$lib/libtrifle.so.1" | grep -Eq 'sqlite|libpq|hiredis|mongoc|bson'; then
    echo "libtrifle links a database client" >&2
    exit 1
fi
# 5. Simple Stats is libtrifle-simple's alone: libtrifle exports none of it, and libtrifle-simple
#    exports nothing else
if nm -D --defined-only "$lib/libtrifle.so.1" | awk '{print $3}' | grep -q '^trifle_simple_'; then
    echo "libtrifle exports Simple Stats symbols" >&2
    exit 1
fi
others=$(nm -D --defined-only "$lib/libtrifle-simple.so.1" | awk '$2 ~ /^[TDBRW]$/ {print $3}' |
    grep -v '^trifle_simple_' || true)
if [ -n "$others" ]; then
    echo "libtrifle-simple exports: $others" >&2
    exit 1
fi
# 6. the conformance kit: the installed runner finds the installed vectors relative to itself,
#    also after the whole prefix moved, and --vectors overrides them
if [ -x "$work/prefix/bin/trifle-conformance" ] && [ -f "$lib/trifle-1/trifle_sqlite.so" ]; then
    for f in "$src"/../../conformance/vectors/*.json; do
        cmp -s "$f" "$work/prefix/share/trifle-1/vectors/$(basename "$f")" ||
            { echo "vectors: $(basename "$f") is not installed" >&2; exit 1; }
    done
    mv "$work/prefix" "$work/moved"
    lib=$work/moved/${lib#"$work/prefix/"}
    kit() { LD_LIBRARY_PATH=$lib "$work/moved/bin/trifle-conformance" --driver sqlite \
        --driver-path "$lib/trifle-1" --only 'vectors.*' "$@"; }
    out=$(kit) || { echo "$out" >&2; echo "installed trifle-conformance failed" >&2; exit 1; }
    want="# vectors $(cd "$work/moved/share/trifle-1/vectors" && pwd -P)"
    if ! printf '%s\n' "$out" | grep -qxF "$want" ||
        ! printf '%s\n' "$out" | grep -qx '5 passed, 0 failed, 0 skipped'; then
        printf '%s\n' "$out" >&2
        echo "installed trifle-conformance did not run its vector cases from $want" >&2
        exit 1
    fi
    mkdir "$work/own"
    cp "$work/moved/share/trifle-1/vectors/nocturnal.json" "$work/own/"
    out=$(kit --vectors "$work/own") && printf '%s\n' "$out" | grep -qxF "# vectors $work/own" ||
        { printf '%s\n' "$out" >&2; echo "--vectors DIR was not used" >&2; exit 1; }
    if kit --vectors "$work/none" >/dev/null 2>&1; then
        echo "--vectors with a missing directory did not fail" >&2
        exit 1
    fi
fi
echo "install ok"
