package receiving

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// Two clients read the same vacancy and both update it with the etag they read (AIP-154): the
// first update is made, the second is ABORTED with ETAG_MISMATCH (the current etag in its
// metadata) and changes nothing; re-read, it goes through. An update without an etag
// overwrites, as before. The etag is stable while the vacancy does not change.
func TestUpdateVacancyEtagTwoClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createVacancy(goodVacancy(t))
	if created.GetEtag() == "" {
		t.Fatal("a created vacancy has no etag")
	}
	alice := receivingv1.NewVacancyServiceClient(e.conn)
	bob := receivingv1.NewVacancyServiceClient(e.dial())
	read := func(c receivingv1.VacancyServiceClient) *receivingv1.Vacancy {
		t.Helper()
		r, err := c.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: created.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetVacancy()
	}
	va, vb := read(alice), read(bob)
	if va.GetEtag() != created.GetEtag() || vb.GetEtag() != created.GetEtag() {
		t.Fatalf("etags %q, %q of an unchanged vacancy, want %q", va.GetEtag(), vb.GetEtag(), created.GetEtag())
	}
	headcount := &fieldmaskpb.FieldMask{Paths: []string{"headcount"}}
	resp, err := alice.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: va.GetName(), Etag: va.GetEtag(), Headcount: 8}, UpdateMask: headcount})
	if err != nil {
		t.Fatalf("alice's update: %v", err)
	}
	if resp.GetVacancy().GetEtag() == va.GetEtag() || resp.GetVacancy().GetHeadcount() != 8 {
		t.Fatalf("after alice's update: %v", resp.GetVacancy())
	}
	_, err = bob.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: vb.GetName(), Etag: vb.GetEtag(), Headcount: 3}, UpdateMask: headcount})
	st := wantCode(t, err, codes.Aborted, "ETAG_MISMATCH")
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["etag"] != resp.GetVacancy().GetEtag() {
			t.Errorf("metadata etag %q, want the current %q", info.GetMetadata()["etag"], resp.GetVacancy().GetEtag())
		}
	}
	if got := read(alice); got.GetHeadcount() != 8 || got.GetEtag() != resp.GetVacancy().GetEtag() {
		t.Fatalf("bob's refused update changed the vacancy: %v", got)
	}
	// Bob reads again and retries with the new etag.
	vb = read(bob)
	again, err := bob.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: vb.GetName(), Etag: vb.GetEtag(), Headcount: 3}, UpdateMask: headcount})
	if err != nil || again.GetVacancy().GetHeadcount() != 3 {
		t.Fatalf("bob's update after reading again: %v, %v", again, err)
	}
	// No etag: overwrites whatever is stored.
	over, err := alice.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: va.GetName(), Headcount: 6}, UpdateMask: headcount})
	if err != nil || over.GetVacancy().GetHeadcount() != 6 {
		t.Fatalf("update without an etag: %v, %v", over, err)
	}
	// The stale etag is refused also when the update would change nothing.
	_, err = alice.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: va.GetName(), Etag: va.GetEtag(), Headcount: 6}, UpdateMask: headcount})
	wantCode(t, err, codes.Aborted, "ETAG_MISMATCH")
	// The list shows the same etag as the read.
	list, err := bob.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{})
	if err != nil || len(list.GetVacancies()) != 1 || list.GetVacancies()[0].GetEtag() != over.GetVacancy().GetEtag() {
		t.Fatalf("listed %v, %v; want etag %q", list, err, over.GetVacancy().GetEtag())
	}
}
