package catalog

// Nearest returns the name of names closest to s by edit distance, if it
// is at most 2 edits away (a typo); else "". Ties go to the first name.
func Nearest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := levenshtein(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}
