<?php
// SimpleSAMLphp 1.19 configuration for deskgate's test IdP. tests/peers/saml.sh copies this
// directory to .peers/saml/config and writes peer.php (port, directories) beside it.
$peer = require __DIR__ . '/peer.php';

$config = [
    'baseurlpath' => 'http://127.0.0.1:' . $peer['port'] . '/',
    'certdir' => $peer['dir'] . '/cert/',
    'loggingdir' => $peer['dir'] . '/log/',
    'datadir' => $peer['dir'] . '/data/',
    'tempdir' => $peer['dir'] . '/tmp',
    'metadatadir' => __DIR__ . '/metadata/',
    'attributenamemapdir' => '/usr/share/simplesamlphp/attributemap/',

    'secretsalt' => 'deskgate-test-idp-salt',
    'auth.adminpassword' => 'deskgate-test-admin',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'technicalcontact_name' => 'deskgate tests',
    'technicalcontact_email' => 'tests@deskgate.example',
    'timezone' => 'UTC',

    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],

    'store.type' => 'phpsession',
    'session.phpsession.savepath' => $peer['dir'] . '/sessions',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.httponly' => true,
    'session.duration' => 8 * 3600,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.path' => '/',
    'session.cookie.domain' => null,
    // Over plain http a secure cookie never comes back, and every login loses its state.
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'language.cookie.secure' => false,

    'trusted.url.domains' => ['127.0.0.1', 'localhost'],
    'production' => false,
    'theme.use' => 'default',
];
