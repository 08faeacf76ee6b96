package dashboard

import "testing"

// TestCatalogHasEveryKeyInBothLanguages: a key missing in one language would show as empty text.
func TestCatalogHasEveryKeyInBothLanguages(t *testing.T) {
	for lang, words := range catalog {
		for other, otherWords := range catalog {
			for k := range words {
				if otherWords[k] == "" {
					t.Errorf("%q is in %s but not in %s", k, lang, other)
				}
			}
		}
	}
	if len(catalog) != 2 || catalog["zh"] == nil || catalog["en"] == nil {
		t.Fatalf("languages %d, want zh and en", len(catalog))
	}
}
