package roster

import "github.com/eastwest/labourlink/services/platform/privacy"

// personalData lists the request fields of the RosterService that carry personal data on purpose
// (grpcserver.PersonalDataFields): the roster's identity numbers and phones. The grpcserver
// privacy guard refuses an identity number or a phone number in any other field of any request.
// The rows of an import are checked one by one instead (validateRow), so that a bad row is
// rejected and the others kept.
var personalData = privacy.Allow{
	"labourlink.sending.v1.ImportWorkersRequest.rows":     privacy.CheckedPerItem,
	"labourlink.sending.v1.WorkerRow.id_number":           privacy.IDNumber,
	"labourlink.sending.v1.WorkerRow.phone":               privacy.Phone,
	"labourlink.sending.v1.Worker.id_number":              privacy.IDNumber, // a worker sent back to UpdateWorker as read
	"labourlink.sending.v1.Worker.phone":                  privacy.Phone,
	"labourlink.sending.v1.LookupWorkerRequest.id_number": privacy.IDNumber,
}

// PersonalDataFields gives the grpcserver privacy guard the roster's allow-list.
func (x *rosterServer) PersonalDataFields() privacy.Allow { return personalData }
