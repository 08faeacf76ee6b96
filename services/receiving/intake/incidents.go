package intake

import (
	"strings"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

const (
	kindUnspecified = receivingv1.IncidentKind_INCIDENT_KIND_UNSPECIFIED
	kindInjury      = receivingv1.IncidentKind_INCIDENT_KIND_INJURY
	kindIllness     = receivingv1.IncidentKind_INCIDENT_KIND_ILLNESS
	kindWage        = receivingv1.IncidentKind_INCIDENT_KIND_WAGE_DISPUTE
	kindLabour      = receivingv1.IncidentKind_INCIDENT_KIND_LABOUR_DISPUTE
	kindOther       = receivingv1.IncidentKind_INCIDENT_KIND_OTHER

	// maxIncidentDetail is the longest Incident.detail (the old free-text kind had the same
	// limit).
	maxIncidentDetail = 50
)

// kindWord is the name of kind k in words: "injury", "wage dispute".
func kindWord(k receivingv1.IncidentKind) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k.String(), "INCIDENT_KIND_")), "_", " ")
}

// incidentText is the incident's kind as the ledger event's detail: the detail of an OTHER
// incident, otherwise the kind in words with the detail after a colon when there is one. For
// an incident converted from a free-text kind it is that text, when the text was the kind's
// words ("injury") or an unknown text (OTHER), so that the incident's event id is the same.
func incidentText(in *receivingv1.Incident) string {
	if in.GetIncidentKind() == kindOther {
		return in.GetDetail()
	}
	w := kindWord(in.GetIncidentKind())
	if in.GetDetail() != "" {
		w += ": " + in.GetDetail()
	}
	return w
}

// knownKindTexts are the free-text kinds the receiving service recorded before IncidentKind
// (schema version 1) that have a kind of their own, normalised by normKindText.
var knownKindTexts = map[string]receivingv1.IncidentKind{
	"injury": kindInjury, "injured": kindInjury, "work injury": kindInjury, "accident": kindInjury,
	"工伤": kindInjury, "受伤": kindInjury, "伤害": kindInjury,
	"illness": kindIllness, "sickness": kindIllness, "sick": kindIllness, "疾病": kindIllness, "生病": kindIllness,
	"wage dispute": kindWage, "wage arrears": kindWage, "unpaid wages": kindWage,
	"欠薪": kindWage, "工资纠纷": kindWage, "拖欠工资": kindWage, "欠薪纠纷": kindWage,
	"labour dispute": kindLabour, "labor dispute": kindLabour, "dispute": kindLabour,
	"劳动纠纷": kindLabour, "劳动争议": kindLabour,
}

func normKindText(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.ToLower(s), "_", " ")), " ")
}

// kindOfText converts a free-text kind of schema version 1: a known text is its kind (without
// detail); any other text is OTHER with the text as the detail.
func kindOfText(text string) (receivingv1.IncidentKind, string) {
	if k, ok := knownKindTexts[normKindText(text)]; ok {
		return k, ""
	}
	return kindOther, strings.TrimSpace(text)
}
