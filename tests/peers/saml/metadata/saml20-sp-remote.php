<?php
// deskgate as a service provider, once per way of signing, so that tests can ask for each
// kind of response. Entity id <sp_base>/.deskgate/saml/<id>/metadata and ACS
// <sp_base>/.deskgate/saml/<id>/acs, the defaults deskgate derives for provider <id>.
// The `test` entry's entity id and ACS can be overridden (SAML_SP_ENTITY_ID, SAML_SP_ACS).
$peer = require dirname(__DIR__) . '/peer.php';

$rsaSha256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
$variants = [
    // id => [sign the Response, sign the Assertion, signature algorithm, extra options]
    'test' => [true, true, $rsaSha256, []],
    'assertion-signed' => [false, true, $rsaSha256, []],
    'response-signed' => [true, false, $rsaSha256, []],
    'unsigned' => [false, false, $rsaSha256, []],
    'sha1' => [true, true, 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', []],
    'signed-requests' => [true, true, $rsaSha256, [
        'validate.authnrequest' => true,
        'certificate' => 'sp.crt',
    ]],
];

// The gateway's own integration tests run deskgate at SAML_GATEWAY_BASE with provider id
// `onelogin`; that entry signs like `test`.
if (!empty($peer['gateway_base'])) {
    $variants['gateway'] = [true, true, $rsaSha256, []];
}

foreach ($variants as $id => [$signResponse, $signAssertion, $algorithm, $extra]) {
    $base = $id === 'gateway' ? $peer['gateway_base'] : $peer['sp_base'];
    $path = $id === 'gateway' ? 'onelogin' : $id;
    $entityId = $base . '/.deskgate/saml/' . $path . '/metadata';
    $acs = $base . '/.deskgate/saml/' . $path . '/acs';
    if ($id === 'test') {
        $entityId = $peer['sp_entity_id'] ?: $entityId;
        $acs = $peer['sp_acs'] ?: $acs;
    }
    $metadata[$entityId] = array_merge([
        'AssertionConsumerService' => [[
            'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
            'Location' => $acs,
            'index' => 0,
        ]],
        'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
        'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
        'saml20.sign.response' => $signResponse,
        'saml20.sign.assertion' => $signAssertion,
        'signature.algorithm' => $algorithm,
    ], $extra);
}
