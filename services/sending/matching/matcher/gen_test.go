package matcher

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// genOccupations are 30 ISCO-08 unit groups common in point-to-point labour programmes, most
// popular first.
var genOccupations = []string{
	"8212", "9313", "8153", "9333", "9329", "8219", "7112", "5120", "9112", "7411",
	"8160", "7212", "7115", "8322", "9321", "5131", "5141", "7126", "7233", "8141",
	"8143", "8121", "7531", "7536", "9412", "5414", "9211", "8344", "7114", "7121",
}

var (
	genProvinces       = []string{"440000", "330000", "320000", "310000"}
	genProvinceWeights = []float64{0.45, 0.25, 0.18, 0.12}
)

// pickWeighted returns an index drawn with the given (unnormalised) weights.
func pickWeighted(r *rand.Rand, cum []float64) int {
	x := r.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func cumulative(w []float64) []float64 {
	c := make([]float64, len(w))
	s := 0.0
	for i, x := range w {
		s += x
		c[i] = s
	}
	return c
}

// generate makes a realistic instance with a fixed seed: nWorkers workers of ~80 Guizhou
// counties (30% registered poor) and nVacancies vacancies in four eastern provinces whose
// headcounts (1..60) sum to about 15 per vacancy.
func generate(seed uint64, nWorkers, nVacancies int) ([]Worker, []Vacancy) {
	r := rand.New(rand.NewPCG(seed, 0x1abe11))
	occW := make([]float64, len(genOccupations))
	for i := range occW {
		occW[i] = 1 / math.Pow(float64(i+1), 0.9)
	}
	occCum := cumulative(occW)
	provCum := cumulative(genProvinceWeights)

	// ~80 home counties of Guizhou in nine prefectures, with skewed populations.
	prefectures := []int{5201, 5202, 5203, 5204, 5205, 5206, 5223, 5226, 5227}
	var counties []string
	var countyW []float64
	for i := 0; len(counties) < 80; i++ {
		p := prefectures[i%len(prefectures)]
		n := i/len(prefectures) + 1
		counties = append(counties, fmt.Sprintf("%d%02d", p, 20+n))
		countyW = append(countyW, 0.3+r.Float64()*r.Float64()*3)
	}
	countyCum := cumulative(countyW)

	first := DateOf(2026, time.March, 2)
	vacs := make([]Vacancy, nVacancies)
	for i := range vacs {
		v := &vacs[i]
		p := pickWeighted(r, provCum)
		v.Province = genProvinces[p]
		v.County = fmt.Sprintf("%s%02d", v.Province[:4], 1+r.IntN(20))
		v.Key = fmt.Sprintf("%s/vacancies/%s-V%07d", v.Province, v.Province, i+1)
		if r.Float64() < 0.15 {
			v.Occupation = General
		} else {
			v.Occupation = genOccupations[pickWeighted(r, occCum)]
		}
		v.StartDate = first + Date(r.IntN(90))
		switch x := r.Float64(); {
		case x < 0.5:
			v.MinAge = 0
		case x < 0.9:
			v.MinAge = 18
		default:
			v.MinAge = 20
		}
		switch x := r.Float64(); {
		case x < 0.2:
			v.MaxAge = 0
		case x < 0.3:
			v.MaxAge = 40
		case x < 0.55:
			v.MaxAge = 45
		case x < 0.8:
			v.MaxAge = 50
		default:
			v.MaxAge = 55
		}
		v.Openings = 1 + int(59*math.Pow(r.Float64(), 3.2))
	}

	workers := make([]Worker, nWorkers)
	for i := range workers {
		w := &workers[i]
		w.ID = fmt.Sprintf("w%08d", i+1)
		w.County = counties[pickWeighted(r, countyCum)]
		w.Poor = r.Float64() < 0.3
		w.HealthOK = r.Float64() < 0.95
		nOcc := 0
		switch x := r.Float64(); {
		case x < 0.15:
			nOcc = 0
		case x < 0.6:
			nOcc = 1
		case x < 0.88:
			nOcc = 2
		default:
			nOcc = 3
		}
		for len(w.Occupations) < nOcc {
			o := genOccupations[pickWeighted(r, occCum)]
			if !contains(w.Occupations, o) {
				w.Occupations = append(w.Occupations, o)
			}
		}
		switch x := r.Float64(); {
		case x < 0.25:
		case x < 0.7:
			w.Destinations = []string{genProvinces[pickWeighted(r, provCum)]}
		default:
			for len(w.Destinations) < 2 {
				p := genProvinces[pickWeighted(r, provCum)]
				if !contains(w.Destinations, p) {
					w.Destinations = append(w.Destinations, p)
				}
			}
		}
		age := 16 + r.IntN(45)
		w.BirthDate = first - Date(age*365+r.IntN(365))
		if r.Float64() < 0.55 {
			w.AvailableFrom = first - Date(1+r.IntN(60))
		} else {
			w.AvailableFrom = first + Date(r.IntN(100))
		}
	}
	return workers, vacs
}
