package triflestats

import (
	"fmt"
	"time"
)

// Unit of a granularity.
type Unit int

// Units in upstream's order.
const (
	UnitSecond Unit = iota
	UnitMinute
	UnitHour
	UnitDay
	UnitWeek
	UnitMonth
	UnitQuarter
	UnitYear
)

// ParseGranularity accepts ^[0-9]+(s|m|h|d|w|mo|q|y)$; an offset of 0 parses (ok) but is not
// valid for writing or reading (reference §2.3).
func ParseGranularity(s string) (int, Unit, bool) {
	i := 0
	offset := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		offset = offset*10 + int(s[i]-'0')
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	units := map[string]Unit{"s": UnitSecond, "m": UnitMinute, "h": UnitHour, "d": UnitDay,
		"w": UnitWeek, "mo": UnitMonth, "q": UnitQuarter, "y": UnitYear}
	u, ok := units[s[i:]]
	if !ok {
		return 0, 0, false
	}
	return offset, u, true
}

func validGranularity(s string) (int, Unit, bool) {
	n, u, ok := ParseGranularity(s)
	return n, u, ok && n > 0
}

func weekdayIndex(d time.Weekday) int {
	if d < time.Sunday || d > time.Saturday {
		return int(time.Monday)
	}
	return int(d)
}

// floorTime is upstream's Nocturnal.Floor (reference §2.4): wall fields floored in the zone and
// rebuilt with time.Date (so DST gaps and folds resolve the way Go resolves them); weeks count
// elapsed real hours from the first week start of the year.
func floorTime(at time.Time, n int, u Unit, cfg *Config) time.Time {
	loc := cfg.Location()
	t := at.In(loc)
	y, mo, d := t.Date()
	week := time.Monday
	if cfg != nil {
		week = cfg.BeginningOfWeek
	}
	switch u {
	case UnitSecond:
		return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second()/n*n, 0, loc)
	case UnitMinute:
		return time.Date(y, mo, d, t.Hour(), t.Minute()/n*n, 0, 0, loc)
	case UnitHour:
		return time.Date(y, mo, d, t.Hour()/n*n, 0, 0, 0, loc)
	case UnitDay:
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, (t.YearDay()-1)/n*n)
	case UnitWeek:
		jan1 := time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		shift := ((weekdayIndex(week)-int(jan1.Weekday()))%7 + 7) % 7
		first := jan1.AddDate(0, 0, shift)
		if t.Before(first) {
			return jan1
		}
		weeks := int(t.Sub(first).Hours() / 168)
		return first.AddDate(0, 0, weeks/n*n*7)
	case UnitMonth:
		return time.Date(y, time.Month((int(mo)-1)/n*n+1), 1, 0, 0, 0, 0, loc)
	case UnitQuarter:
		q := (int(mo) - 1) / 3
		return time.Date(y, time.Month(q/n*n*3+1), 1, 0, 0, 0, 0, loc)
	case UnitYear:
		return time.Date(y/n*n, 1, 1, 0, 0, 0, 0, loc)
	}
	panic(fmt.Sprintf("invalid unit: %d", u))
}

func addMonthsClamped(t time.Time, months int) time.Time {
	total := t.Year()*12 + int(t.Month()) - 1 + months
	y, m := total/12, time.Month(total%12+1)
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	d := t.Day()
	if d > last {
		d = last
	}
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// addTime is upstream's Nocturnal.Add (reference §2.5).
func addTime(at time.Time, n int, u Unit, cfg *Config) time.Time {
	t := at.In(cfg.Location())
	switch u {
	case UnitSecond:
		return t.Add(time.Duration(n) * time.Second)
	case UnitMinute:
		return t.Add(time.Duration(n) * time.Minute)
	case UnitHour:
		return t.Add(time.Duration(n) * time.Hour)
	case UnitDay:
		return t.AddDate(0, 0, n)
	case UnitWeek:
		return t.AddDate(0, 0, 7*n)
	case UnitMonth:
		return addMonthsClamped(t, n)
	case UnitQuarter:
		return addMonthsClamped(t, 3*n)
	case UnitYear:
		return addMonthsClamped(t, 12*n)
	}
	panic(fmt.Sprintf("invalid unit: %d", u))
}

// timeline floors both ends and steps with addTime without re-flooring (reference §2.7).
func timeline(from, to time.Time, n int, u Unit, cfg *Config) []time.Time {
	out := []time.Time{}
	end := floorTime(to, n, u, cfg)
	for t := floorTime(from, n, u, cfg); !t.After(end); t = addTime(t, n, u, cfg) {
		out = append(out, t)
	}
	return out
}

// Parser is upstream's parsed granularity; Valid requires an offset > 0.
type Parser struct {
	String string
	Offset int
	Unit   Unit
}

// NewParser never fails: an unparsable string gives Offset 0 (not Valid).
func NewParser(s string) *Parser {
	n, u, ok := ParseGranularity(s)
	if !ok {
		return &Parser{String: s}
	}
	return &Parser{String: s, Offset: n, Unit: u}
}

// Valid reports whether the granularity can be used.
func (p *Parser) Valid() bool { return p != nil && p.Offset > 0 }

// Nocturnal is an instant bound to a configuration (zone, week start).
type Nocturnal struct {
	Time   time.Time
	Config *Config
}

// NewNocturnal binds t to cfg.
func NewNocturnal(t time.Time, cfg *Config) *Nocturnal { return &Nocturnal{Time: t, Config: cfg} }

// Floor is the bucket start of the instant (panics for offset <= 0, as upstream).
func (n *Nocturnal) Floor(offset int, unit Unit) time.Time {
	if offset <= 0 {
		panic("offset must be positive")
	}
	return floorTime(n.Time, offset, unit, n.Config)
}

// Add moves the instant by offset units.
func (n *Nocturnal) Add(offset int, unit Unit) time.Time {
	return addTime(n.Time, offset, unit, n.Config)
}

// Timeline lists bucket starts from floor(from) stepping by Add up to floor(to).
func Timeline(from, to time.Time, offset int, unit Unit, cfg *Config) []time.Time {
	return timeline(from, to, offset, unit, cfg)
}
