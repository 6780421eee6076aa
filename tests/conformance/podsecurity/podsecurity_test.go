// Upstream's Pod Security admission suite (k8s.io/pod-security-admission/test), the one
// k8s.io/kubernetes runs in test/integration/auth/podsecurity_test.go against its own apiserver,
// here run against the local cluster's kube-apiserver through KUBECONFIG.
//
// It creates the namespaces podsecurity-{baseline,restricted}-1-N (upstream's names), creates
// pods and Deployments in them with dry-run only, and deletes the namespaces when it is done.
package podsecurity

import (
	"os"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	podsecuritytest "k8s.io/pod-security-admission/test"

	// Registers the kube-apiserver's feature gates with their v1.32 defaults.
	_ "k8s.io/kubernetes/pkg/features"
)

func TestPodSecurity(t *testing.T) {
	config, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	podsecuritytest.Run(t, podsecuritytest.Options{
		ClientConfig: config,
		// The cluster runs the default feature gates: cases that need an alpha or beta gate off
		// by default are left out, as upstream's integration test does.
		Features: utilfeature.DefaultFeatureGate,
	})
}
