package triflestats

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Pack flattens values whose dynamic type is exactly map[string]any into dotted keys; every
// other value is a leaf; empty maps vanish (reference §4.1).
func Pack(values map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok {
				walk(path, sub)
				continue
			}
			out[path] = v
		}
	}
	walk("", values)
	return out
}

func mergeNested(dst, src map[string]any) {
	for k, v := range src {
		dm, ok1 := dst[k].(map[string]any)
		sm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			mergeNested(dm, sm)
			continue
		}
		dst[k] = v
	}
}

// Unpack expands dotted keys, keeping empty segments, merging in Go map iteration order: when a
// key is both a leaf and a prefix the result depends on that (random) order, as upstream.
func Unpack(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		if k == "" {
			continue
		}
		parts := strings.Split(k, ".")
		var node any = v
		for i := len(parts) - 1; i >= 0; i-- {
			node = map[string]any{parts[i]: node}
		}
		mergeNested(out, node.(map[string]any))
	}
	return out
}

var float64Type = reflect.TypeOf(float64(0))

// toFloat is upstream's numeric coercion: Go numbers, json.Number and numeric strings
// (strconv.ParseFloat after TrimSpace) that are finite; never bools.
func toFloat(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		// exactly these types (not types defined on them), converted as float64(x) would
		f = reflect.ValueOf(x).Convert(float64Type).Float()
	case json.Number:
		p, err := x.Float64()
		if err != nil {
			return 0, false
		}
		f = p
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, false
		}
		p, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		f = p
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// NormalizeNumeric returns float64 for numeric input, else nil.
func NormalizeNumeric(v any) any {
	if f, ok := toFloat(v); ok {
		return f
	}
	return nil
}
