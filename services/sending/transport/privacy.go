package transport

import "github.com/eastwest/labourlink/services/platform/privacy"

// transportPersonalData lists the request fields of the TransportService that carry personal
// data on purpose (grpcserver.PersonalDataFields): an escort's work phone. The grpcserver privacy
// guard refuses an identity number or a phone number in any other field of any request.
var transportPersonalData = privacy.Allow{
	"labourlink.sending.v1.PlanBatchesRequest.escort_contact": privacy.Phone,
	"labourlink.sending.v1.Batch.escort_contact":              privacy.Phone,
}

// PersonalDataFields gives the grpcserver privacy guard the transport allow-list (escorts'
// phones).
func (x *transportServer) PersonalDataFields() privacy.Allow { return transportPersonalData }
